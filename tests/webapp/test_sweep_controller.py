"""The sweep controller against the database: trials made as slots free, stopped early, restart-safe."""

from __future__ import annotations

import time

import pytest

from scheduler.sweeps.controller import sweeps_tick
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run, RunEvent, RunState, Sweep, SweepState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.experiments.sweeps import sweep_control, sweep_summaries

from .factories import ProjectFactory, WorkerFactory

pytestmark = pytest.mark.django_db
S = RunState


def _submit(project, **sweep):
    spec = {"recipe": {"model": "mlp", "epochs": 9}, "sweep": {
        "method": "bayes", "max_runs": 6, "parallel": 3,
        "parameters": {"optimizer.lr": {"min": 1e-4, "max": 0.1, "distribution": "log_uniform"},
                       "layers": {"values": [1, 2, 3]}}, **sweep}}
    return run_submit(user=project.owner_user, project=project, spec=spec)


def _start(run, worker):
    assert run_transition(run_id=run.id, from_states=(S.QUEUED,), to_state=S.SCHEDULED, worker_id=worker.id, new_attempt=True)
    assert run_transition(run_id=run.id, from_states=(S.SCHEDULED,), to_state=S.RUNNING)


def _report(run, values):
    """The recipe's way: one val_accuracy per epoch, at the epoch's last step."""
    metrics_log(run_id=run.id, points=[MetricPoint("val_accuracy", 10 * (i + 1), v, time.time()) for i, v in enumerate(values)])


def _trials(sweep):
    return list(Run.objects.filter(sweep=sweep).order_by("number"))


def test_a_bayes_asha_sweep_runs_to_max_runs_stopping_the_weak_trials_early():
    project, worker = ProjectFactory(), WorkerFactory()
    submitted = _submit(project, early_terminate={"type": "asha", "min_iter": 1, "eta": 3})
    sweep = submitted.sweep
    assert submitted.runs == [] and sweep.controlled and sweep.max_runs == 6
    assert sweeps_tick() == {"trials": 3, "stopped_early": 0}
    trials = _trials(sweep)
    assert [t.state for t in trials] == [S.QUEUED] * 3 and all("sweep_point" in t.spec for t in trials)
    assert sweeps_tick()["trials"] == 0  # the slots are full
    for trial in trials:
        _start(trial, worker)
    _report(trials[0], [0.9])
    assert sweeps_tick()["stopped_early"] == 0  # the first at rung 0 goes on
    _report(trials[1], [0.95])
    assert sweeps_tick()["stopped_early"] == 0  # better than the first: goes on
    _report(trials[2], [0.1])  # below the top 1/eta of the three at rung 0
    counts = sweeps_tick()
    assert counts == {"trials": 1, "stopped_early": 1}
    weak = Run.objects.get(id=trials[2].id)
    assert weak.state == S.STOPPED_EARLY and weak.finished_at is not None
    assert weak.metrics.count() == 1  # its metrics are kept
    assert "stopped early by asha at epoch 1" in RunEvent.objects.filter(run=weak).last().reason
    # the good ones train on and finish; the sweep fills its slots up to max_runs, then ends
    for trial, curve in zip(trials[:2], ([0.9, 0.92, 0.97], [0.95, 0.95, 0.96]), strict=False):
        _report(trial, curve)
        assert run_transition(run_id=trial.id, from_states=(S.RUNNING,), to_state=S.SUCCEEDED)
    while (made := [t for t in _trials(sweep) if t.state == S.QUEUED]):
        for trial in made:
            _start(trial, worker)
            _report(trial, [0.5])
            run_transition(run_id=trial.id, from_states=(S.RUNNING,), to_state=S.SUCCEEDED)
        sweeps_tick()
    sweeps_tick()
    assert len(_trials(sweep)) == 6
    sweep.refresh_from_db()
    assert sweep.state == SweepState.FINISHED and sweep.finished_at is not None
    [summary] = sweep_summaries(project)
    assert summary.best_run.id == trials[0].id and summary.best_value == pytest.approx(0.97)
    assert summary.by_state[S.STOPPED_EARLY] == 1


def test_a_restart_between_ticks_makes_no_trial_twice_and_keeps_rung_values():
    project, worker = ProjectFactory(), WorkerFactory()
    sweep = _submit(project, early_terminate={"type": "asha"}).sweep
    sweeps_tick()
    first = _trials(sweep)
    for trial in first:
        _start(trial, worker)
        _report(trial, [0.5])
    sweeps_tick()
    sweep.refresh_from_db()
    assert {str(t.id) for t in first} <= set(sweep.trial_attrs)  # each trial's rung 0 recorded
    for _ in range(3):  # a new scheduler process reads the same rows: nothing new to make
        assert sweeps_tick() == {"trials": 0, "stopped_early": 0}
    assert len(_trials(sweep)) == 3


def test_pause_resume_stop_and_raising_max_runs():
    project, worker = ProjectFactory(), WorkerFactory()
    owner = project.owner_user
    sweep = _submit(project, parallel=2, max_runs=3).sweep
    sweep_control(user=owner, sweep=sweep, action="pause")
    assert sweeps_tick()["trials"] == 0
    sweep_control(user=owner, sweep=sweep, action="resume")
    assert sweeps_tick()["trials"] == 2
    a, b = _trials(sweep)
    _start(a, worker)
    sweep_control(user=owner, sweep=sweep, action="stop")
    assert Run.objects.get(id=b.id).state == S.CANCELLED  # queued: cancelled
    assert Run.objects.get(id=a.id).state == S.RUNNING  # running: finishes
    assert sweeps_tick()["trials"] == 0
    run_transition(run_id=a.id, from_states=(S.RUNNING,), to_state=S.SUCCEEDED)
    sweeps_tick()
    sweep.refresh_from_db()
    assert sweep.state == SweepState.STOPPED and sweep.finished_at is not None


def test_max_runs_is_raised_within_bounds_and_reopens_a_finished_sweep():
    from django.core.exceptions import ValidationError

    project, worker = ProjectFactory(), WorkerFactory()
    sweep = _submit(project, parallel=1, max_runs=1).sweep
    sweeps_tick()
    [trial] = _trials(sweep)
    _start(trial, worker)
    run_transition(run_id=trial.id, from_states=(S.RUNNING,), to_state=S.SUCCEEDED)
    sweeps_tick()
    sweep.refresh_from_db()
    assert sweep.state == SweepState.FINISHED
    with pytest.raises(ValidationError) as caught:
        sweep_control(user=project.owner_user, sweep=sweep, action="max_runs", max_runs=0)
    assert "max_runs" in caught.value.message_dict
    sweep_control(user=project.owner_user, sweep=sweep, action="max_runs", max_runs=2)
    assert sweeps_tick()["trials"] == 1


def test_an_outsider_cannot_control_a_sweep_and_a_broken_sweep_does_not_stop_the_others():
    from django.http import Http404

    from .factories import UserFactory

    project = ProjectFactory()
    good, broken = _submit(project).sweep, _submit(project).sweep
    with pytest.raises(Http404):
        sweep_control(user=UserFactory(), sweep=good, action="stop")
    Sweep.objects.filter(id=broken.id).update(spec={"method": "bayes"})  # no parameters: cannot be planned
    assert sweeps_tick()["trials"] == 3
    assert Run.objects.filter(sweep=good).count() == 3 and not Run.objects.filter(sweep=broken).exists()


def test_grid_and_random_sweeps_still_queue_every_run_at_submit():
    project = ProjectFactory()
    submitted = run_submit(user=project.owner_user, project=project, spec={
        "recipe": {"model": "mlp"}, "sweep": {"parameters": {"layers": {"values": [1, 2]}}}})
    assert len(submitted.runs) == 2 and not submitted.sweep.controlled
    assert sweeps_tick()["trials"] == 0
    [summary] = sweep_summaries(project)
    assert summary.state == SweepState.RUNNING and summary.trials == 2
