"""A multi-node run through one scheduler tick in-process: claimed whole, one doorbell per node, lost whole."""

from __future__ import annotations

import dataclasses
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
