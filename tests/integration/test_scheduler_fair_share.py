"""Scheduler ticks against database rows: CPU-only runs are charged their dominant share; resources.cpus holds slots."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from factories import ProjectFactory

from scheduler.loop import Scheduler
from webapp.cluster.services import worker_register
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import run_submit


def submit(project, count: int, *, cpus: int = 1) -> list[Run]:
    spec = {"recipe": {"model": "mlp"}, "resources": {"gpus": 0, "cpus": cpus, "max_minutes": 2}}
    return [run_submit(user=project.owner_user, project=project, spec=spec).runs[0] for _ in range(count)]


def finish_scheduled() -> list[int]:
    """Pretend the scheduled runs each ran one second and finished; their ids, oldest first."""
    ids = list(Run.objects.filter(state=RunState.SCHEDULED).order_by("scheduled_at", "id").values_list("id", flat=True))
    now = timezone.now()
    Run.objects.filter(id__in=ids).update(
        state=RunState.SUCCEEDED, started_at=now - timedelta(seconds=1), finished_at=now
    )
    return ids


@pytest.mark.django_db
def test_cpu_only_users_alternate_on_a_two_slot_worker(app):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=2, gpus=[])
    alice, bob = ProjectFactory(), ProjectFactory()
    alice_runs = submit(alice, 20)
    bob_runs = submit(bob, 5)
    scheduler = Scheduler(app=app)
    order: list[int] = []
    for _ in range(20):
        scheduler.tick()
        order += finish_scheduled()
        if len(order) == 25:
            break

    assert sorted(order) == sorted(run.id for run in alice_runs + bob_runs)
    assert min(order.index(run.id) for run in bob_runs) < 4, order


@pytest.mark.django_db
def test_resources_cpus_hold_that_many_slots(app):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=4, gpus=[])
    project = ProjectFactory()
    big, second = submit(project, 1, cpus=3) + submit(project, 1, cpus=2)
    scheduler = Scheduler(app=app)

    scheduler.tick()
    scheduler.tick()  # the scheduled run's 3 slots are still held on the second tick

    big.refresh_from_db()
    second.refresh_from_db()
    assert big.state == RunState.SCHEDULED
    assert second.state == RunState.QUEUED
    assert second.pending_reason.startswith("waiting for 2 CPU slots on one worker; most free on one worker is 1")
