"""ASHA's promotion variant against the database: a trial pauses at a rung only once a checkpoint covers
it, a promotion re-queues it as a new attempt that resumes, and the end of the sweep stops the rest early."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler.accounting import UsageLedger
from scheduler.policy import ClusterCapacity, PolicyConfig
from scheduler.sweeps.controller import sweeps_tick
from webapp.experiments.lifecycle import run_cancel, run_transition
from webapp.experiments.models import Artifact, Run, RunEvent, RunState, Sweep, SweepState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.experiments.sweeps import sweep_summary

from .factories import ProjectFactory, WorkerFactory

pytestmark = pytest.mark.django_db
S = RunState
STEPS_PER_EPOCH = 10


def _submit(project, max_runs=3):
    spec = {"recipe": {"model": "mlp", "epochs": 9}, "sweep": {
        "method": "random", "max_runs": max_runs, "parallel": 3,
        "parameters": {"optimizer.lr": {"min": 1e-4, "max": 0.1, "distribution": "log_uniform"}},
        "early_terminate": {"type": "asha", "variant": "promotion", "min_iter": 1, "max_iter": 3, "eta": 3}}}
    return run_submit(user=project.owner_user, project=project, spec=spec).sweep


def _start(run, worker):
    assert run_transition(run_id=run.id, from_states=(S.QUEUED,), to_state=S.SCHEDULED, worker_id=worker.id, new_attempt=True)
    assert run_transition(run_id=run.id, from_states=(S.SCHEDULED,), to_state=S.RUNNING)


def _epochs(run, values, first=1, *, checkpoint=True):
    """The recipe's way: val_accuracy at each epoch's last step, then a checkpoint at that step."""
    for epoch, value in enumerate(values, start=first):
        metrics_log(run_id=run.id, points=[MetricPoint("val_accuracy", STEPS_PER_EPOCH * epoch, value, time.time())])
        if checkpoint:
            Artifact.objects.create(run=run, name=f"checkpoints/step-{STEPS_PER_EPOCH * epoch}.ckpt", kind="checkpoint",
                                    step=STEPS_PER_EPOCH * epoch, size=1, sha256="0" * 64, storage_path="x")


def _state(run):
    return Run.objects.get(id=run.id).state


def _jobs_ended(runs):
    """What the worker does once a paused attempt's job stopped and its last results are stored."""
    Run.objects.filter(id__in=[run.id for run in runs], state=S.PAUSED).update(exit_code=-15)


def test_trials_pause_at_a_rung_the_best_is_promoted_and_resumes_and_the_rest_stop_early_at_the_end():
    project, worker = ProjectFactory(), WorkerFactory()
    sweep = _submit(project)
    sweeps_tick()
    trials = list(Run.objects.filter(sweep=sweep).order_by("number"))
    assert len(trials) == 3
    for trial in trials:
        _start(trial, worker)
    _epochs(trials[0], [0.5], checkpoint=False)
    sweeps_tick()
    assert _state(trials[0]) == S.RUNNING  # no checkpoint covers its rung yet: a resume would redo the epoch
    Artifact.objects.create(run=trials[0], name="checkpoints/step-10.ckpt", kind="checkpoint", step=10, size=1,
                            sha256="0" * 64, storage_path="x")
    _epochs(trials[1], [0.9])
    _epochs(trials[2], [0.7])
    sweeps_tick()  # all three pause
    assert [_state(t) for t in trials] == [S.PAUSED] * 3
    assert sweep_summary(sweep).by_state == {"paused": 3}  # as the sweep page, the API and `kiln sweep` show it
    sweeps_tick()
    assert [_state(t) for t in trials] == [S.PAUSED] * 3  # their jobs may still be storing results
    _jobs_ended(trials)
    sweeps_tick()  # the best (floor(3 / 3) = 1) is promoted into a free slot
    assert [_state(t) for t in trials] == [S.PAUSED, S.QUEUED, S.PAUSED]
    promoted = Run.objects.get(id=trials[1].id)
    assert promoted.finished_at is None and promoted.exit_code is None
    assert promoted.max_attempts == 4 and promoted.attempt == 1  # a promotion is not a retry
    assert "resumes from checkpoint step 10" in promoted.pending_reason
    assert list(RunEvent.objects.filter(run=promoted).values_list("to_state", flat=True)) == \
        [S.QUEUED, S.SCHEDULED, S.RUNNING, S.PAUSED, S.QUEUED]
    attrs = Sweep.objects.get(id=sweep.id).trial_attrs[str(promoted.id)]
    assert attrs["completed_rung_0"] == 0.9 and attrs["asha_rung"] == 1
    _start(promoted, worker)
    assert Run.objects.get(id=promoted.id).attempt == 2
    _epochs(promoted, [0.92, 0.95], first=2)
    sweeps_tick()
    assert _state(promoted) == S.RUNNING  # past the last rung (iteration 1 < max_iter 3): it trains to its end
    assert run_transition(run_id=promoted.id, from_states=(S.RUNNING,), to_state=S.SUCCEEDED)
    sweeps_tick()  # max_runs made, nothing active, one trial fully trained: the paused ones end
    assert [_state(t) for t in trials] == [S.STOPPED_EARLY, S.SUCCEEDED, S.STOPPED_EARLY]
    assert Sweep.objects.get(id=sweep.id).state == SweepState.FINISHED


def test_a_paused_trial_can_be_cancelled_and_never_counts_as_active():
    project, worker = ProjectFactory(), WorkerFactory()
    sweep = _submit(project, max_runs=5)
    sweeps_tick()
    first = Run.objects.filter(sweep=sweep).order_by("number").first()
    _start(first, worker)
    _epochs(first, [0.5])
    sweeps_tick()
    assert _state(first) == S.PAUSED
    assert Run.objects.filter(sweep=sweep).count() == 4  # its slot went to a new trial
    assert run_cancel(user=project.owner_user, run=Run.objects.get(id=first.id))
    assert _state(first) == S.CANCELLED


def test_fair_share_charges_every_attempt_of_a_promoted_trial():
    project, worker = ProjectFactory(), WorkerFactory()
    sweep = _submit(project)
    sweeps_tick()
    trial = Run.objects.filter(sweep=sweep).order_by("number").first()
    user = project.owner_user.username
    config, capacity = PolicyConfig(), ClusterCapacity(gpus=0, cpu_slots=8, memory_mb=0)
    _start(trial, worker)
    Run.objects.filter(id=trial.id).update(started_at=timezone.now() - timedelta(minutes=10))
    assert run_transition(run_id=trial.id, from_states=(S.RUNNING,), to_state=S.PAUSED)
    ledger = UsageLedger()
    first = ledger.totals(config, time.time(), capacity).by_user[user]
    assert first == pytest.approx(600 / 8, rel=0.02)  # its paused attempt: 10 minutes of one CPU slot of 8
    assert run_transition(run_id=trial.id, from_states=(S.PAUSED,), to_state=S.QUEUED, finished_at=None)
    _start(trial, worker)
    Run.objects.filter(id=trial.id).update(started_at=timezone.now() - timedelta(minutes=5))
    assert run_transition(run_id=trial.id, from_states=(S.RUNNING,), to_state=S.SUCCEEDED)
    assert ledger.totals(config, time.time(), capacity).by_user[user] == pytest.approx(900 / 8, rel=0.02)
