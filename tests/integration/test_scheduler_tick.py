"""One scheduler tick in-process: placement with CAS claims, pending reasons, lost workers, re-sends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from factories import ProjectFactory

from scheduler.loop import Scheduler
from webapp.cluster.models import Worker
from webapp.cluster.services import worker_register
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Artifact, Run, RunState
from webapp.experiments.submit import run_submit
from worker.celery_app import RUN_TASK


@pytest.fixture
def submit(db):
    project = ProjectFactory()

    def go(gpus: int = 0) -> Run:
        spec = {"recipe": {"model": "mlp"}, "resources": {"gpus": gpus}}
        return run_submit(user=project.owner_user, project=project, spec=spec).runs[0]

    return go


def test_a_tick_claims_placed_runs_and_sends_after_commit(app, submit, django_capture_on_commit_callbacks):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=1, gpus=[])
    first, second = submit(), submit()
    with django_capture_on_commit_callbacks(execute=True):
        counts = Scheduler(app=app).tick()
    assert counts["started"] == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.attempt, first.worker.name) == (RunState.SCHEDULED, 1, "w1")
    assert app.sent == [(RUN_TASK, [first.id, 1, "w1"], "kiln.worker.w1")]
    assert second.state == RunState.QUEUED and "w1" in second.pending_reason  # the policy's words


def test_a_run_nothing_can_hold_waits_with_its_reason(app, submit):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=4, gpus=[])
    run = submit(gpus=2)
    Scheduler(app=app).tick()
    run.refresh_from_db()
    assert run.state == RunState.QUEUED and "2 GPUs" in run.pending_reason and app.sent == []


def test_runs_of_a_silent_worker_are_lost_then_requeued_or_failed(app, submit, settings):
    worker = worker_register(name="w1", hostname="h", queue="q", cpu_slots=4, gpus=[])
    again, spent = submit(), submit()
    Run.objects.filter(id=spent.id).update(max_attempts=1)
    Scheduler(app=app).tick()
    Artifact.objects.create(run=again, name="checkpoints/s.safetensors", kind="checkpoint", step=7, size=1,
                            sha256="0" * 64, storage_path="x")
    for run in (again, spent):
        assert run_transition(run_id=run.id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING)
    Worker.objects.filter(id=worker.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    counts = Scheduler(app=app).tick()
    assert counts["lost"] == 2 and counts["requeued"] == 1
    again.refresh_from_db()
    spent.refresh_from_db()
    assert again.state == RunState.QUEUED and again.worker is None
    requeued = again.events.get(from_state=RunState.LOST, to_state=RunState.QUEUED)
    assert "resumes from checkpoint step 7" in requeued.reason
    assert spent.state == RunState.FAILED and "giving up" in spent.failure_reason


def test_a_run_stuck_in_scheduled_gets_its_message_again(app, submit, django_capture_on_commit_callbacks):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=1, gpus=[])
    run = submit()
    scheduler = Scheduler(app=app, resend_after=30.0)
    with django_capture_on_commit_callbacks(execute=True):
        scheduler.tick()
    assert scheduler.tick()["resent"] == 0
    Run.objects.filter(id=run.id).update(scheduled_at=timezone.now() - timedelta(minutes=1))
    assert Scheduler(app=app, resend_after=30.0).tick()["resent"] == 1  # e.g. after a scheduler restart
    assert [args for _, args, _ in app.sent] == [[run.id, 1, "w1"], [run.id, 1, "w1"]]


def test_the_tick_purges_soft_deleted_runs_past_their_retention_hourly_and_never_places_one(app, submit):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=2, gpus=[])  # room for both
    hidden, old = submit(), submit()
    Run.all_objects.filter(id=hidden.id).update(deleted_at=timezone.now())  # as no service would: still queued
    scheduler = Scheduler(app=app)
    assert scheduler.tick()["started"] == 1 and Run.all_objects.get(id=hidden.id).state == RunState.QUEUED
    Run.objects.filter(id=old.id).update(state=RunState.CANCELLED, deleted_at=timezone.now() - timedelta(days=31))
    assert scheduler.tick()["purged"] == 0  # the first tick purged; the next purge is an hour later
    scheduler.purge_due = 0.0
    assert scheduler.tick()["purged"] == 1
    assert list(Run.all_objects.values_list("id", flat=True)) == [hidden.id]  # the recent one is kept
