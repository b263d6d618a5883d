"""What the placement policy needs, read from the database and mapped to its ORM-free dataclasses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from scheduler.policy import (
    ClusterCapacity,
    PolicyConfig,
    QueuedRun,
    RunningRun,
    UsageRecord,
    UsageTotals,
    WorkerState,
    usage_totals,
)
from webapp.cluster.models import Worker
from webapp.experiments.models import Run, RunState, run_cpus, run_memory_gb

CPUS = "spec__resources__cpus"  # resources.cpus lives in the stored spec only (no Run column): `run_cpus`
HOLDING = (RunState.SCHEDULED, RunState.RUNNING)
USAGE_HISTORY_HALF_LIVES = 5  # older finished runs weigh < 3% and are not read


def queued_runs() -> list[QueuedRun]:
    """Every queued run; user code (kind "code") needs an isolated worker, built-in recipes do not."""
    rows = Run.objects.filter(state=RunState.QUEUED).values_list(
        "id", "owner__username", "project__team__slug", "project__owner_user_id", "priority", "gpus",
        "created_at", "max_minutes", "memory_gb", "kind", CPUS,
    )
    return [
        QueuedRun(run_id, user, team if owner_user is None else None, priority, gpus, run_cpus(cpus),
                  created.timestamp(), float(minutes), memory_mb(memory_gb), kind == "code")
        for run_id, user, team, owner_user, priority, gpus, created, minutes, memory_gb, kind, cpus in rows
    ]


def memory_mb(memory_gb: float) -> int:
    """A run's memory in MB (0 in the row: the KILN_RUN_MEMORY_GB default)."""
    return round(run_memory_gb(memory_gb) * 1024)


def worker_states(online: list[Worker]) -> list[WorkerState]:
    """Each online worker with the GPUs, CPU slots and memory its scheduled and running runs hold.

    A worker runs code when its isolation check held, or everywhere once the admin set
    KILN_ALLOW_UNISOLATED_CODE; a draining one keeps its jobs but gets nothing new.
    """
    allow_unisolated = settings.CONFIG.allow_unisolated_code
    holding: dict[int, list[dict[str, Any]]] = {worker.id: [] for worker in online}
    for row in Run.objects.filter(state__in=HOLDING, worker_id__in=holding).values(
        "id", "worker_id", "gpus", "gpu_indices", "owner__username", "project__team__slug",
        "project__owner_user_id", "started_at", "scheduled_at", "max_minutes", "memory_gb", CPUS,
    ):
        holding[row["worker_id"]].append(dict(row))
    states = []
    for worker in online:
        rows = holding[worker.id]
        indices = [int(gpu["index"]) for gpu in worker.gpus]
        used = {index for row in rows for index in row["gpu_indices"]}
        running = tuple(_running(row) for row in rows)
        held_memory = sum(job.memory_mb for job in running)
        held_cpu = sum(job.cpu_slots for job in running)
        states.append(WorkerState(
            name=worker.name, gpu_count=len(indices), free_gpu_indices=tuple(i for i in indices if i not in used),
            cpu_slots=worker.cpu_slots, free_cpu_slots=max(0, worker.cpu_slots - held_cpu),
            running=running, memory_mb=worker.memory_mb, free_memory_mb=max(0, worker.memory_mb - held_memory),
            runs_code=worker.isolated or allow_unisolated, draining=worker.draining,
        ))
    return states


def usage(config: PolicyConfig, now: float, capacity: ClusterCapacity) -> UsageTotals:
    """Decayed dominant-share-seconds of recent and running runs, per user and team.

    Shares are taken of today's `capacity` (the online workers), for past runs too.
    """
    horizon = timezone.now() - timedelta(seconds=config.half_life_seconds * USAGE_HISTORY_HALF_LIVES)
    rows = Run.objects.filter(started_at__isnull=False).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=horizon)
    ).values_list("owner__username", "project__team__slug", "project__owner_user_id", "gpus", "memory_gb",
                  "started_at", "finished_at", CPUS)
    records = []
    for user, team, owner_user, gpus, memory_gb, started, finished, cpus in rows:
        if started is None:
            continue
        ended = finished.timestamp() if finished else None
        seconds = max(0.0, (ended or now) - started.timestamp())
        share = capacity.dominant_share(gpus, run_cpus(cpus), memory_mb(memory_gb))
        records.append(UsageRecord(user, team if owner_user is None else None, share * seconds, ended))
    return usage_totals(records, now=now, half_life_seconds=config.half_life_seconds)


def _running(row: dict[str, Any]) -> RunningRun:
    began = row["started_at"] or row["scheduled_at"]
    expected_end = began.timestamp() + row["max_minutes"] * 60.0 if began else None
    team = row["project__team__slug"] if row["project__owner_user_id"] is None else None
    return RunningRun(row["id"], row["owner__username"], team, row["gpus"], run_cpus(row[CPUS]), expected_end,
                      memory_mb(row["memory_gb"]))

