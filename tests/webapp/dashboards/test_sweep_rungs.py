"""The sweep page's rungs table counts every trial that reached a rung: paused there, stopped there, or
trained past it before the controller saw it (promotion.rung_value's rule)."""

from __future__ import annotations

import math

import pytest

from scheduler.sweeps.controller import sweeps_tick
from webapp.dashboards.sweep_selectors import sweep_insights
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit

from ..factories import ProjectFactory

pytestmark = pytest.mark.django_db


def _sweep(early: dict, trials: int):
    project = ProjectFactory()
    spec = {"recipe": {"model": "mlp", "epochs": 9}, "sweep": {
        "method": "random", "max_runs": trials, "parallel": trials,
        "parameters": {"optimizer.lr": {"min": 0.001, "max": 0.1}}, "early_terminate": early}}
    sweep = run_submit(user=project.owner_user, project=project, spec=spec).sweep
    sweeps_tick()
    runs = list(Run.objects.filter(sweep=sweep).order_by("number"))
    assert len(runs) == trials
    return project, sweep, runs


def _report(run: Run, values: list[float], *, steps: list[int] | None = None) -> None:
    steps = steps or list(range(len(values)))
    metrics_log(run_id=run.id, points=[MetricPoint("val_accuracy", s, v, 1.7e9 + s) for s, v in zip(steps, values, strict=True)])


def _end(run: Run, state: str) -> None:
    Run.objects.filter(id=run.id).update(state=state)


def test_paused_stopped_and_passed_trials_all_count_at_the_rungs_they_reached():
    # rungs at epochs 1 and 3 (max_iter 9, eta 3)
    _, sweep, (paused, stopped, fast, _fresh, diverged) = _sweep(
        {"type": "asha", "variant": "promotion", "min_iter": 1, "max_iter": 9, "eta": 3}, trials=5)
    _report(paused, [0.5])
    _end(paused, RunState.PAUSED)
    _report(stopped, [0.4, 0.6, 0.7])
    _end(stopped, RunState.STOPPED_EARLY)
    _report(fast, [0.3, 0.5, 0.8, 0.85, 0.9, 0.9, 0.91, 0.92, 0.93])  # nine epochs between two ticks: never paused
    _end(fast, RunState.SUCCEEDED)
    _report(diverged, [math.nan])  # reached rung 0 with no value: nothing to count there
    attrs = dict(sweep.trial_attrs)
    attrs[str(paused.id)] = {"completed_rung_0": 0.5}
    attrs[str(stopped.id)] = {"completed_rung_0": 0.4, "completed_rung_1": 0.7, "asha_rung": 1}
    sweep.trial_attrs = attrs
    sweep.save()

    rungs = sweep_insights(sweep)["rungs"]
    assert [(r["rung"], r["iteration"], r["trials"], r["promoted"]) for r in rungs] == [(0, 1, 3, 1), (1, 3, 2, 0)]


def test_a_stopping_sweep_without_max_iter_counts_step_rungs_read_off_the_curve():
    # rungs at steps 10, 30, 90, ... up to the furthest step reported; a rung's value: the first report at or after it
    _, sweep, (seen, unseen, short) = _sweep({"type": "asha", "min_iter": 10, "eta": 3, "iteration": "step"}, trials=3)
    _report(seen, [0.2, 0.4], steps=[12, 40])
    _report(unseen, [0.1, 0.3, 0.5, 0.6], steps=[7, 14, 35, 50])
    _report(short, [0.9], steps=[5])
    attrs = dict(sweep.trial_attrs)
    attrs[str(seen.id)] = {"completed_rung_0": 0.2, "completed_rung_1": 0.4}  # the pruner saw it at both rungs
    sweep.trial_attrs = attrs
    sweep.save()
    for run in (seen, unseen, short):
        _end(run, RunState.SUCCEEDED)

    rungs = sweep_insights(sweep)["rungs"]
    assert [(r["rung"], r["iteration"], r["trials"]) for r in rungs] == [(0, 10, 2), (1, 30, 2)]


def test_the_sweep_page_shows_the_counts_in_its_rungs_table(client):
    project, sweep, (fast, paused) = _sweep(
        {"type": "asha", "variant": "promotion", "min_iter": 1, "max_iter": 9, "eta": 3}, trials=2)
    _report(fast, [0.3, 0.5, 0.8, 0.85])
    _end(fast, RunState.SUCCEEDED)
    _report(paused, [0.2])
    _end(paused, RunState.PAUSED)
    sweep.trial_attrs = {**sweep.trial_attrs, str(paused.id): {"completed_rung_0": 0.2}}
    sweep.save()
    client.force_login(project.owner_user)
    page = client.get(f"/p/{project.id}/sweeps/{sweep.id}/").content.decode()
    table = page.split('id="rungs"')[1].split("</table>")[0]
    assert "<tr><td>0</td><td>1</td><td>2</td><td>0</td></tr>" in table  # the fast trial passed rung 0 too
    assert "<tr><td>1</td><td>3</td><td>1</td><td>0</td></tr>" in table
