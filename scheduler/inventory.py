"""What the placement policy needs, read from the database and mapped to its ORM-free dataclasses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db.models import F

from scheduler.accounting import SUBJECT_FIELDS, DurationHistory, estimates_for_rows
from scheduler.policy import (
    QueuedRun,
    RunningRun,
    WorkerState,
)
from webapp.cluster.models import Worker
from webapp.experiments.models import Run, RunNode, RunState, run_cpus, run_memory_gb

CPUS = "spec__resources__cpus"  # resources.cpus lives in the stored spec only (no Run column): `run_cpus`
HOLDING = (RunState.SCHEDULED, RunState.RUNNING)


def queued_runs(durations: DurationHistory | None = None) -> list[QueuedRun]:
    """Every queued run; user code (kind "code") needs an isolated worker, built-in recipes do not.

    With `durations`, each run carries its expected run time from the history of its recipe or code.
    """
    rows = list(Run.objects.filter(state=RunState.QUEUED).values_list(
        "id", "owner__username", "project__team__slug", "project__owner_user_id", "priority", "gpus",
        "created_at", "max_minutes", "memory_gb", "kind", CPUS, *SUBJECT_FIELDS,
    ))
    estimates = estimates_for_rows(durations, rows)
    runs = [
        QueuedRun(run_id, user, team if owner_user is None else None, priority, gpus, run_cpus(cpus),
                  created.timestamp(), float(minutes), memory_mb(memory_gb), kind == "code",
                  None if estimate is None else estimate.minutes)
        for (run_id, user, team, owner_user, priority, gpus, created, minutes, memory_gb, kind, cpus, *_), estimate
        in zip(rows, estimates, strict=True)
    ]
    return _gangs_whole(runs)


def _gangs_whole(runs: list[QueuedRun]) -> list[QueuedRun]:
    """Multi-node runs as the policy sees them: `nodes`, and every node's GPUs, CPU slots and memory together."""
    nodes = dict(Run.objects.filter(state=RunState.QUEUED, nodes__gt=1).values_list("id", "nodes"))
    if not nodes:
        return runs
    return [
        replace(run, nodes=n, gpus=run.gpus * n, cpu_slots=run.cpu_slots * n, memory_mb=run.memory_mb * n)
        if (n := nodes.get(run.id, 1)) > 1 else run
        for run in runs
    ]


def _hold_other_nodes(holding: dict[int, list[dict[str, Any]]]) -> None:
    """Nodes 1.. of multi-node runs hold their share on their own workers (the run's row names node 0's)."""
    gang_rows = {row["id"]: row for rows in holding.values() for row in rows}
    for run_id, worker_id, gpu_indices in RunNode.objects.filter(
        run__state__in=HOLDING, attempt=F("run__attempt"), node_rank__gt=0, worker_id__in=list(holding),
    ).values_list("run_id", "worker_id", "gpu_indices"):
        if run_id in gang_rows:
            holding[worker_id].append({**gang_rows[run_id], "worker_id": worker_id, "gpu_indices": gpu_indices})


def memory_mb(memory_gb: float) -> int:
    """A run's memory in MB (0 in the row: the KILN_RUN_MEMORY_GB default)."""
    return round(run_memory_gb(memory_gb) * 1024)


def worker_states(online: list[Worker], durations: DurationHistory | None = None) -> list[WorkerState]:
    """Each online worker with the GPUs, CPU slots and memory its scheduled and running runs hold.

    A worker runs code when its isolation check held, or everywhere once the admin set
    KILN_ALLOW_UNISOLATED_CODE; a draining one keeps its jobs but gets nothing new. With
    `durations`, a job is expected to end after its estimated run time (at most its max_minutes).
    """
    allow_unisolated = settings.CONFIG.allow_unisolated_code
    holding: dict[int, list[dict[str, Any]]] = {worker.id: [] for worker in online}
    rows = list(Run.objects.filter(state__in=HOLDING, worker_id__in=holding).values(
        "id", "worker_id", "gpus", "gpu_indices", "owner__username", "project__team__slug",
        "project__owner_user_id", "started_at", "scheduled_at", "max_minutes", "memory_gb", CPUS, *SUBJECT_FIELDS,
    ))
    estimates = estimates_for_rows(durations, [tuple(row[field] for field in SUBJECT_FIELDS) for row in rows])
    for row, estimate in zip(rows, estimates, strict=True):
        row["expected_minutes"] = None if estimate is None else estimate.minutes
        holding[row["worker_id"]].append(row)
    _hold_other_nodes(holding)
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


def _running(row: dict[str, Any]) -> RunningRun:
    began = row["started_at"] or row["scheduled_at"]
    minutes = row["max_minutes"] if row.get("expected_minutes") is None else min(row["expected_minutes"],
                                                                                   row["max_minutes"])
    expected_end = began.timestamp() + minutes * 60.0 if began else None
    team = row["project__team__slug"] if row["project__owner_user_id"] is None else None
    return RunningRun(row["id"], row["owner__username"], team, row["gpus"], run_cpus(row[CPUS]), expected_end,
                      memory_mb(row["memory_gb"]))

