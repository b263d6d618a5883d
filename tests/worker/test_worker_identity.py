"""A worker process cleans up only after itself (finding 6) and drains before it hands runs back (finding 7)."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from webapp.cluster.models import Worker
from webapp.cluster.services import worker_claim_name, worker_sign_off
from webapp.experiments.models import Run, RunState
from worker import main, shutdown, tasks
from worker.identity import cgroup_prefix, instance_id


class Beats(threading.Event):
    """A stop event that lets the heartbeat loop beat `n` times, at once."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    def wait(self, timeout: float | None = None) -> bool:
        self.left -= 1
        return self.left < 0


def _held_here(worker_id: int) -> None:
    """The row is this process's (the fixture registered it without an instance)."""
    Worker.objects.filter(id=worker_id).update(instance_id=instance_id(), pid=os.getpid())


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    monkeypatch.setattr(main, "close_old_connections", lambda: None)  # it would end the test's transaction


def _beat(worker_id: int, n: int = 1) -> None:
    main._heartbeat_loop({"id": worker_id}, lambda: pytest.fail("registered again"), 0.0, Beats(n), "w-test")


def test_the_heartbeat_hands_back_only_attempts_this_process_started(submit_code, claimed, monkeypatch):
    predecessors = claimed(submit_code("print('started by the process before')"))
    unrecorded = claimed(submit_code("print('started here, its end never recorded')"))
    _held_here(unrecorded.worker_id)
    monkeypatch.setattr(tasks, "_started", {(unrecorded.id, unrecorded.attempt)})
    _beat(unrecorded.worker_id, n=2)
    assert Run.objects.get(id=predecessors.id).state == RunState.RUNNING
    assert Run.objects.get(id=unrecorded.id).state == RunState.LOST
    assert tasks.attempts_started() == set()  # handed back once, then forgotten


def test_a_heartbeat_that_finds_its_row_taken_over_stops_serving_and_hands_back_nothing(
        submit_code, claimed, monkeypatch):
    run = claimed(submit_code("print('x')"))
    Worker.objects.filter(id=run.worker_id).update(instance_id=uuid.uuid4().hex)  # another process took it
    monkeypatch.setattr(tasks, "_started", {(run.id, run.attempt)})
    stopped: list[str] = []
    monkeypatch.setattr(main, "_stop_serving", stopped.append)
    _beat(run.worker_id, n=3)
    assert len(stopped) == 1 and "took worker w-test over" in stopped[0]
    assert Run.objects.get(id=run.id).state == RunState.RUNNING  # the new holder's to hand back, not ours


def test_job_cgroups_are_named_by_instance_so_a_restart_removes_only_its_predecessors():
    mine, other = cgroup_prefix("w"), cgroup_prefix("w", uuid.uuid4().hex)
    assert mine.startswith("kiln-w-") and mine != other and not other.startswith(mine)


@pytest.mark.django_db(transaction=True)
def test_a_stopping_worker_is_draining_before_its_jobs_are_told_to_stop(monkeypatch):
    worker = worker_claim_name(name="w-stop", hostname="here", queue="q", cpu_slots=1, gpus=[],
                               instance_id=instance_id(), pid=os.getpid()).worker
    draining_when_stopped: list[bool] = []

    class Stopping(threading.Event):
        def set(self) -> None:
            draining_when_stopped.append(Worker.objects.get(id=worker.id).draining)
            super().set()

    monkeypatch.setattr(shutdown, "_stopping", Stopping())
    shutdown.drain_on_stop(worker_id=worker.id, instance_id=instance_id())
    try:
        shutdown.stop_running_jobs(sig="SIGTERM", how="Warm", exitcode=0)
        assert shutdown.worker_stopping() and draining_when_stopped == [True]
    finally:
        shutdown.reset()
    worker_sign_off(worker_id=worker.id, instance_id=instance_id())  # what run_worker does at exit
    again = worker_claim_name(name="w-stop", hostname="here", queue="q", cpu_slots=1, gpus=[],
                              instance_id=uuid.uuid4().hex, pid=os.getpid())  # signed off: taken over
    assert again.worker.draining is False
