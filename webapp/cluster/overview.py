"""The cluster page's data: workers' capacity and allocation, the queue in fair-share order, usage and quotas.

Everything comes from the scheduler's own readers (`scheduler.inventory`, `scheduler.accounting`)
and its pure `queue_order`, so the page shows what the next pass will see. A fixed number of
queries whatever the size of the cluster or the queue; usage and estimates are kept per process
between requests as the scheduler keeps them between ticks. Admins see everything; anyone else
sees the same workers, their own queued runs and their own (and their teams') share and quotas.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from scheduler import inventory
from scheduler.accounting import (
    DurationHistory,
    Estimate,
    UsageLedger,
    no_estimate,
    policy_quotas,
    run_subject,
    with_admin_quotas,
)
from scheduler.pending_reasons import count, gigabytes
from scheduler.policy import ClusterCapacity, PolicyConfig, QueuedRun, WorkerState, queue_order
from webapp.accounts.models import Membership
from webapp.cluster.models import Quota, Worker
from webapp.cluster.quotas import Holding, QuotaRow, quota_rows
from webapp.experiments.models import Run

QUEUE_ROWS = 200  # the page lists at most this many queued runs (the count says how many there are)
_lock = threading.Lock()
_usage = UsageLedger()
_durations = DurationHistory()


@dataclass(frozen=True)
class WorkerRow:
    name: str
    state: str  # online, draining, silent
    gpus_used: int
    gpus_total: int
    cpus_used: int
    cpus_total: int
    memory_used: str
    memory_total: str  # "unknown" when the worker did not say
    jobs: int
    isolated: bool
    isolation_summary: str


@dataclass(frozen=True)
class QueueRow:
    position: int
    run: Any  # the Run, with project and owner
    asks: str
    reason: str
    estimate: str


@dataclass(frozen=True)
class ShareRow:
    kind: str  # "user" or "team"
    name: str
    usage_hours: float  # decayed dominant-share-hours: hours of the whole cluster
    percent: float  # of everyone's usage
    quota: list[QuotaRow] = field(default_factory=list)


@dataclass(frozen=True)
class Overview:
    is_admin: bool
    workers: list[WorkerRow]
    capacity: str
    queue: list[QueueRow]
    queued_total: int  # queued runs the viewer may see
    shares: list[ShareRow]
    half_life: str


def cluster_overview(user: AbstractBaseUser) -> Overview:
    """What `user` may see of the cluster right now."""
    is_admin = bool(getattr(user, "is_superuser", False))
    now_dt = timezone.now()
    now = now_dt.timestamp()
    workers = list(Worker.objects.filter(stopped_at__isnull=True).order_by("name"))
    cutoff = now_dt - timedelta(seconds=settings.CONFIG.worker_timeout_seconds)
    with _lock:
        states = inventory.worker_states(workers, _durations)
        by_name = {state.name: state for state in states}
        online = [by_name[w.name] for w in workers if w.heartbeat_at >= cutoff]
        queued = inventory.queued_runs(_durations)
        config = with_admin_quotas(PolicyConfig(), policy_quotas())
        capacity = ClusterCapacity.of(online)
        usage = _usage.totals(config, now, capacity, week_gpu_seconds=config.quotas.counts_gpu_hours)
    order, user_usage, team_usage = queue_order(queued=queued, workers=online, usage=usage, config=config, now=now)
    username = user.get_username()
    teams = set() if is_admin else set(Membership.objects.filter(user_id=user.pk).values_list("team__slug", flat=True))
    visible = order if is_admin else [run for run in order if run.user == username]
    positions = {run.id: n for n, run in enumerate(order, start=1)}
    return Overview(
        is_admin=is_admin,
        workers=[_worker_row(w, by_name[w.name], cutoff) for w in workers],
        capacity=_capacity_text(capacity),
        queue=_queue_rows(visible[:QUEUE_ROWS], positions),
        queued_total=len(visible),
        shares=_shares(user_usage, team_usage, usage, online, is_admin=is_admin, username=username, teams=teams),
        half_life=_duration(config.half_life_seconds),
    )


def _worker_row(worker: Worker, state: WorkerState, cutoff: datetime) -> WorkerRow:
    memory_known = worker.memory_mb > 0
    held_memory = sum(job.memory_mb for job in state.running)
    return WorkerRow(
        name=worker.name,
        state="silent" if worker.heartbeat_at < cutoff else "draining" if worker.draining else "online",
        gpus_used=state.gpu_count - len(state.free_gpu_indices), gpus_total=state.gpu_count,
        cpus_used=sum(job.cpu_slots for job in state.running), cpus_total=worker.cpu_slots,
        memory_used=gigabytes(held_memory), memory_total=gigabytes(worker.memory_mb) if memory_known else "unknown",
        jobs=len(state.running), isolated=worker.isolated,
        isolation_summary=(worker.isolation or {}).get("summary", "not checked yet"),
    )


def _capacity_text(capacity: ClusterCapacity) -> str:
    parts = [count(capacity.gpus, "GPU"), count(capacity.cpu_slots, "CPU slot")]
    parts.append(f"{gigabytes(capacity.memory_mb)} of memory" if capacity.memory_mb else "memory unknown")
    return ", ".join(parts)


def _queue_rows(runs: list[QueuedRun], positions: dict[int, int]) -> list[QueueRow]:
    rows = Run.objects.filter(id__in=[run.id for run in runs]).select_related("project__owner_user", "project__team",
                                                                              "owner")
    found = {row.id: row for row in rows}
    subjects = {
        row.id: run_subject(row.project_id, row.kind, row.code_sha256, *_recipe(row.spec)) for row in found.values()
    }
    estimates = _durations.estimates(subject for subject in subjects.values() if subject is not None)
    result = []
    for run in runs:
        row = found.get(run.id)
        if row is None:  # started or cancelled since the queue was read
            continue
        subject = subjects[run.id]
        estimate: Estimate | None = None if subject is None else estimates.get(subject)
        result.append(QueueRow(
            position=positions[run.id], run=row, asks=_asks(run),
            reason=row.pending_reason or "waiting for the scheduler",
            estimate=no_estimate(run.max_minutes) if estimate is None else estimate.describe(run.max_minutes),
        ))
    return result


def _recipe(spec: Any) -> tuple[object, object]:
    recipe = spec.get("recipe") if isinstance(spec, dict) else None
    return (recipe.get("model"), recipe.get("dataset")) if isinstance(recipe, dict) else (None, None)


def _asks(run: QueuedRun) -> str:
    parts = [count(run.gpus, "GPU")] if run.gpus else []
    parts.append(count(run.cpu_slots, "CPU"))
    parts.append(gigabytes(run.memory_mb))
    return ", ".join(parts)


def _shares(user_usage: dict[str, float], team_usage: dict[str, float], usage: Any, online: list[WorkerState], *,
            is_admin: bool, username: str, teams: set[str]) -> list[ShareRow]:
    """Decayed usage (history plus what running jobs are promised) of every user and team, with their quotas."""
    total = sum(user_usage.values()) or 1.0
    holdings = _holdings(online, usage)
    quotas = {(q.user.username if q.user else q.team.slug, "user" if q.user_id else "team"): q  # type: ignore[union-attr]
              for q in Quota.objects.select_related("user", "team")}
    names = {("user", name) for name in user_usage} | {("team", name) for name in team_usage}
    names |= {(kind, name) for name, kind in quotas}
    if not is_admin:
        names = {(kind, name) for kind, name in names
                 if (kind == "user" and name == username) or (kind == "team" and name in teams)}
        names.add(("user", username))
    rows = []
    for kind, name in sorted(names, key=lambda key: (key[0] != "user", key[1].lower())):
        used = (user_usage if kind == "user" else team_usage).get(name, 0.0)
        rows.append(ShareRow(kind, name, used / 3600.0, 100.0 * used / total,
                             quota_rows(quotas.get((name, kind)), holdings.get((kind, name), Holding()))))
    return rows


def _holdings(online: list[WorkerState], usage: Any) -> dict[tuple[str, str], Holding]:
    """What each user and team holds on the online workers, from the rows already read (no query)."""
    held: dict[tuple[str, str], list[float]] = {}
    seen: set[int] = set()  # the nodes of a multi-node run are one job per worker, and one run
    for worker in online:
        for job in worker.running:
            keys = [("user", job.user)] + ([("team", job.team)] if job.team else [])
            for key in keys:
                total = held.setdefault(key, [0, 0, 0.0, 0])
                total[0] += job.gpus
                total[1] += job.cpu_slots
                total[2] += job.memory_mb / 1024
                total[3] += job.run_id not in seen
            seen.add(job.run_id)
    result = {}
    week = {("user", k): v for k, v in usage.week_gpu_seconds_by_user.items()}
    week.update({("team", k): v for k, v in usage.week_gpu_seconds_by_team.items()})
    for key in set(held) | set(week):
        gpus, cpus, memory, runs = held.get(key, [0, 0, 0.0, 0])
        result[key] = Holding(int(gpus), int(cpus), float(memory), int(runs), week.get(key, 0.0) / 3600.0)
    return result


def _duration(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g} days" if days >= 1 else f"{seconds / 3600:g} h"


def reset_caches() -> None:
    """Forget usage and estimates kept between requests (tests that rewrite history use this)."""
    global _usage, _durations
    with _lock:
        _usage, _durations = UsageLedger(), DurationHistory()
