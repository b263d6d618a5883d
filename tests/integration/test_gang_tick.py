"""A multi-node run through one scheduler tick in-process: claimed whole, one doorbell per node, lost whole."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from factories import ProjectFactory

from scheduler.loop import Scheduler
from webapp.cluster.models import Worker
from webapp.cluster.services import worker_register
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import NodeState, Run, RunNode, RunState
from webapp.experiments.submit import CodeUpload, run_submit
from worker.celery_app import RUN_TASK
from worker.gang_failure import lost_peer_behind


@pytest.fixture
def gang(db, settings):
    settings.CONFIG = dataclasses.replace(settings.CONFIG, allow_unisolated_code=True)  # code runs, no canary here
    project = ProjectFactory()

    def submit(nodes: int = 2, cpus: int = 2) -> Run:
        spec = {"resources": {"nodes": nodes, "cpus_per_node": cpus}, "distributed": {"processes_per_node": cpus}}
        return run_submit(user=project.owner_user, project=project, spec=spec,
                          code=CodeUpload("train.py", b"pass\n")).runs[0]

    return submit


def test_a_gang_is_claimed_on_all_its_workers_with_one_message_per_node(app, gang, django_capture_on_commit_callbacks):
    for name in ("w1", "w2"):
        worker_register(name=name, hostname="h", queue="q", cpu_slots=2, gpus=[])
    run = gang()
    with django_capture_on_commit_callbacks(execute=True):
        counts = Scheduler(app=app).tick()
    run.refresh_from_db()
    assert counts["started"] == 1 and (run.state, run.attempt, run.worker.name) == (RunState.SCHEDULED, 1, "w1")
    nodes = list(RunNode.objects.filter(run=run).values_list("attempt", "node_rank", "worker_name", "state"))
    assert nodes == [(1, 0, "w1", NodeState.SCHEDULED), (1, 1, "w2", NodeState.SCHEDULED)]
    assert len(set(RunNode.objects.filter(run=run).values_list("rendezvous_id", flat=True))) == 1
    assert app.sent == [(RUN_TASK, [run.id, 1, "w1"], "kiln.worker.w1"), (RUN_TASK, [run.id, 1, "w2", 1], "kiln.worker.w2")]


def test_the_nodes_of_a_placed_gang_hold_their_workers_at_the_next_tick(app, gang):
    for name in ("w1", "w2"):
        worker_register(name=name, hostname="h", queue="q", cpu_slots=2, gpus=[])
    first, second = gang(), gang()
    Scheduler(app=app).tick()
    Scheduler(app=app).tick()
    second.refresh_from_db()
    assert second.state == RunState.QUEUED and "waiting for 2 workers with 2 free CPUs each (0 available)" in \
        second.pending_reason
    assert Run.objects.get(id=first.id).state == RunState.SCHEDULED


def test_a_draining_worker_keeps_the_whole_gang_queued(app, gang, django_capture_on_commit_callbacks):
    for name in ("w1", "w2"):
        worker_register(name=name, hostname="h", queue="q", cpu_slots=2, gpus=[])
    run = gang()
    scheduler = Scheduler(app=app)
    # the worker starts draining between the pass and the claim
    original = scheduler.dispatcher.start

    def drain_then_start(assignments, workers):
        Worker.objects.filter(name="w2").update(draining=True)
        return original(assignments, workers)

    scheduler.dispatcher.start = drain_then_start
    with django_capture_on_commit_callbacks(execute=True):
        scheduler.tick()
    run.refresh_from_db()
    assert run.state == RunState.QUEUED and run.attempt == 0 and not RunNode.objects.filter(run=run).exists()
    assert app.sent == []


def test_losing_any_worker_of_a_gang_loses_the_run_and_requeues_it_whole(app, gang):
    for name in ("w1", "w2"):
        worker_register(name=name, hostname="h", queue="q", cpu_slots=2, gpus=[])
    run = gang()
    Scheduler(app=app).tick()
    assert run_transition(run_id=run.id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING)
    Worker.objects.filter(name="w2").update(heartbeat_at=timezone.now() - timedelta(hours=1))  # node 1's worker
    Scheduler(app=app).tick()
    run.refresh_from_db()
    reasons = list(run.events.values_list("to_state", "reason"))
    assert ("lost", "worker w2 (node 1) stopped heartbeating: every node of the run stops") in reasons
    assert run.state == RunState.QUEUED and run.worker is None
    assert list(RunNode.objects.filter(run=run, attempt=1).values_list("node_rank", "state")) == [
        (0, NodeState.SCHEDULED), (1, NodeState.STOPPED)]  # the dead worker's node is not left "running"


def _running_gang(app, gang) -> Run:
    for name in ("w1", "w2"):
        worker_register(name=name, hostname="h", queue="q", cpu_slots=2, gpus=[])
    run = gang()
    Scheduler(app=app).tick()
    assert run_transition(run_id=run.id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING)
    RunNode.objects.filter(run=run).update(state=NodeState.RUNNING)
    return run


def test_a_node_failing_while_its_peers_heartbeat_is_its_own_failure(app, gang):
    run = _running_gang(app, gang)
    failed_at = timezone.now()
    beats = []

    def peer_heartbeats(seconds):  # node 1's worker answers after the failure
        beats.append(seconds)
        Worker.objects.filter(name="w2").update(heartbeat_at=timezone.now())

    assert lost_peer_behind(run.id, 1, 0, failed_at, worker_timeout_seconds=30, sleep=peer_heartbeats) is None
    assert len(beats) == 1


def test_a_node_failing_after_a_peer_went_silent_blames_the_lost_peer(app, gang):
    run = _running_gang(app, gang)
    Worker.objects.filter(name="w2").update(heartbeat_at=timezone.now() - timedelta(seconds=1))
    waited = []
    peer = lost_peer_behind(run.id, 1, 0, timezone.now(), worker_timeout_seconds=0.2,
                            sleep=lambda s: (waited.append(s), time.sleep(0.05)))
    assert peer == "worker w2 (node 1)" and waited  # it waited for a heartbeat that never came
    Worker.objects.filter(name="w2").update(stopped_at=timezone.now())
    assert lost_peer_behind(run.id, 1, 0, timezone.now(), worker_timeout_seconds=30,
                            sleep=lambda s: pytest.fail("a stopped worker needs no wait")) == "worker w2 (node 1)"


def test_a_node_failing_after_the_run_left_running_waits_for_nothing(app, gang):
    run = _running_gang(app, gang)
    assert run_transition(run_id=run.id, from_states=(RunState.RUNNING,), to_state=RunState.LOST)
    assert lost_peer_behind(run.id, 1, 0, timezone.now(), worker_timeout_seconds=30,
                            sleep=lambda s: pytest.fail("no wait")) is None


def test_a_node_whose_ranks_crash_when_a_peer_worker_dies_loses_the_run_instead_of_failing_it(
        app, gang, settings, monkeypatch):
    from worker import tasks
    from worker.outcome import FAILED, Outcome

    for name in ("w1", "w2"):
        worker_register(name=name, hostname="h", queue="q", cpu_slots=2, gpus=[])
    run = gang()
    Scheduler(app=app).tick()
    settings.CONFIG = dataclasses.replace(settings.CONFIG, worker_timeout_seconds=0.3, worker_name="w1")

    def ranks_crash_as_node_1_dies(run_id, attempt, worker_name, node_rank):
        Worker.objects.filter(name="w2").update(heartbeat_at=timezone.now() - timedelta(seconds=1))
        return Outcome(FAILED, exit_code=139, reason="rank 0 was killed by signal SIGSEGV")

    monkeypatch.setattr(tasks, "_run_node", ranks_crash_as_node_1_dies)
    assert tasks.execute_run(run.id, 1, "w1", 0) == "interrupted"
    run.refresh_from_db()
    assert run.state == RunState.LOST
    assert run.events.last().reason == ("node 0 on w1: worker w2 (node 1) stopped answering "
                                        "(rank 0 was killed by signal SIGSEGV)")
    assert RunNode.objects.get(run=run, node_rank=0).state == NodeState.STOPPED
