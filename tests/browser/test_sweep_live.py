"""The sweep page stays live: trial states, the counts, the rungs table, best so far and the parallel
coordinates follow the sweep without a reload, and polling stops once the sweep is over."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from scheduler.sweeps.controller import sweeps_tick
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.experiments.sweeps import sweep_control
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "a-long-browser-pass-42"
SPEC = {"recipe": {"model": "mlp", "epochs": 9}, "sweep": {
    "method": "random", "max_runs": 2, "parallel": 2, "parameters": {"optimizer.lr": {"min": 0.001, "max": 0.1}},
    "early_terminate": {"type": "asha", "variant": "promotion", "min_iter": 1, "max_iter": 9, "eta": 3}}}
WAIT = 15_000  # ms: a few polls


def _start(run: Run) -> None:
    run_transition(run_id=run.id, from_states=(RunState.QUEUED,), to_state=RunState.SCHEDULED, reason="placed",
                   new_attempt=True)
    run_transition(run_id=run.id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING, reason="started")


def _report(run: Run, values: list[float]) -> None:
    metrics_log(run_id=run.id, points=[MetricPoint("val_accuracy", s, v, 1.7e9 + s) for s, v in enumerate(values)])


def _sweep(username: str, spec: dict):
    """A user's project with a sweep of `spec`, its first trials made by a controller tick."""
    owner = get_user_model().objects.create_user(username=username, password=PASSWORD)
    project = Project.objects.create(slug=f"{username}-sweeps", name="Sweeping", owner_user=owner)
    sweep = run_submit(user=owner, project=project, spec=spec).sweep
    assert sweep is not None
    sweeps_tick()
    return owner, project, sweep, list(Run.objects.filter(sweep=sweep).order_by("number"))


def test_a_running_sweep_shows_trial_states_rungs_and_the_best_run_without_a_reload(live_server, page, login):
    owner, project, sweep, (fast, slow) = _sweep("swen", SPEC)

    login(page, "swen", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.id}/sweeps/{sweep.id}/")
    page.wait_for_selector("body[data-charts-ready='1']", timeout=WAIT)
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    assert page.locator("#best-so-far").is_hidden() and page.locator("#best-so-far-empty").is_visible()
    assert page.locator("#trials-by-state").inner_text().strip() == "2 queued"

    # one trial runs its nine epochs between two controller ticks (never paused: it passed both rungs)
    _start(fast)
    _start(slow)
    page.wait_for_function(f"() => document.querySelector('#trials tr[data-run=\"{slow.id}\"]').dataset.state === 'running'",
                           timeout=WAIT)
    _report(fast, [0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.83, 0.84])
    run_transition(run_id=fast.id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED, reason="done")
    _report(slow, [0.2])
    page.wait_for_function(f"""() => {{
        const row = document.querySelector('#trials tr[data-run="{fast.id}"]');
        const plot = document.getElementById('best-so-far');
        return row && row.dataset.state === 'succeeded' && !plot.hidden && plot.data && plot.data[1].y[0] === 0.84;
    }}""", timeout=WAIT)
    rows = page.locator("#rungs tbody tr").all_inner_texts()
    assert [row.split("\t")[:3] for row in rows] == [["0", "1", "2"], ["1", "3", "1"]]
    assert "#" + str(fast.number) in page.locator("#sweep-best").inner_text()
    assert "0.84" in page.locator("#sweep-best").inner_text()
    objective = page.locator("#parcoords").evaluate("div => div.data[0].line.color")
    assert objective[0] == 0.84 and objective[1] == 0.2

    # the sweep is stopped, its last trial ends: the page says so and stops polling
    sweep_control(user=owner, sweep=sweep, action="stop")
    page.wait_for_function("() => document.getElementById('sweep-state').dataset.state === 'stopped'", timeout=WAIT)
    assert page.locator("body[data-live-stopped='true']").count() == 0  # a trial still runs
    run_transition(run_id=slow.id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED, reason="done")
    page.wait_for_selector("body[data-live-stopped='true']", timeout=WAIT)
    assert page.locator("#trials-by-state").inner_text().strip() == "2 succeeded"
    assert page.locator("#sweep-controls").count() == 0  # a stopped sweep offers nothing
    assert page.evaluate("() => window.sameDocument") is True


IMPORTANCE_SPEC = {"recipe": {"model": "mlp"}, "sweep": {
    "method": "random", "max_runs": 5, "parallel": 5,
    "parameters": {"optimizer.lr": {"min": 0.001, "max": 0.1}, "layers": {"values": [1, 2, 3]}}}}


def test_the_importance_chart_draws_a_bar_per_parameter(live_server, page, login):
    # the pages load plotly.js's gl2d bundle, which has no bar trace: importance bars are line segments
    _, project, sweep, trials = _sweep("imre", IMPORTANCE_SPEC)
    for value, trial in zip((0.5, 0.9, 0.3, 0.7, 0.6), trials, strict=True):
        _start(trial)
        _report(trial, [value])
        run_transition(run_id=trial.id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED, reason="done")

    login(page, "imre", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.id}/sweeps/{sweep.id}/")
    page.wait_for_function("() => { const div = document.getElementById('importance'); return div.data && !div.hidden; }",
                           timeout=WAIT)
    bars, values = page.locator("#importance").evaluate("div => [div.data[0], div.data[1]]")
    assert sorted(set(filter(None, bars["y"]))) == ["layers", "optimizer.lr"]
    assert bars["x"][0::3] == [0, 0] and bars["x"][1::3] == values["x"]  # each bar runs from 0 to its value
    assert page.locator("#importance .scatterlayer path.js-line").count() == 2  # one drawn segment per bar
