"""The placement policy: pure functions from queued runs, workers and usage to a `Plan`.

One pass considers queued runs in this order:

1. Runs queued longer than `starvation_after_seconds`, oldest first (aging, so nothing
   waits forever behind fairer users or its own user's higher-priority runs).
2. Everyone else in fair-share order (`scheduler.fairshare`): the team with the least
   decayed usage, then the user in it with the least, then that user's runs by priority
   (higher first), submitted_at, id. Usage is dominant-resource fairness: a run is charged
   its dominant share (the largest of its GPUs, CPU slots and memory as a fraction of what
   all online workers hold, `ClusterCapacity`) times its run time, so CPU-only clusters
   are as fair as GPU ones. A user's usage is its decayed history plus the share-seconds
   promised to its running jobs (dominant share x time left before `max_minutes`); each
   run placed in the pass is charged the same way at once.

Each run, in that order: a run that can never fit gets `never_fits`'s reason; a code run
that no isolated worker could ever hold waits with "no isolated worker"; a run over its
user's GPU quota waits; otherwise it starts on the best-fitting worker that has ALL its
GPUs, CPU slots and memory free (gang placement: never partial) and, for user code, runs
code (its sandbox check held, or the admin allowed unisolated code). Draining workers
take nothing new; their jobs still count for usage and quotas. The first run that finds
no room holds the pass's one reservation and later runs backfill around it without
delaying it (`scheduler.placement`). Once every worker is full the rest only get their
reasons.
"""

from __future__ import annotations

from collections.abc import Sequence

from scheduler import pending_reasons
from scheduler.fairshare import FairShareOrder, UsageRecord, UsageTotals, usage_totals
from scheduler.pending_reasons import count, gigabytes
from scheduler.placement import HELD, ISOLATION, MEMORY, NO_ROOM, Miss, Request, WorkerPool
from scheduler.policy_types import (
    Assignment,
    ClusterCapacity,
    Plan,
    PolicyConfig,
    QueuedRun,
    Quotas,
    Reservation,
    RunningRun,
    WorkerState,
)

__all__ = [
    "Assignment",
    "ClusterCapacity",
    "Plan",
    "PolicyConfig",
    "QueuedRun",
    "Quotas",
    "Reservation",
    "RunningRun",
    "UsageRecord",
    "UsageTotals",
    "WorkerState",
    "never_fits",
    "plan_pass",
    "usage_totals",
]

NO_WORKERS = "waiting for a worker to come online"


def plan_pass(
    *,
    queued: Sequence[QueuedRun],
    workers: Sequence[WorkerState],
    usage: UsageTotals,
    config: PolicyConfig,
    now: float,
) -> Plan:
    """Decide which queued runs start now, where, and why the others wait.

    Args:
        queued: every run in state `queued` (any order; the result does not depend on it).
        workers: the online workers, with what is free and running on each.
        usage: decayed share-seconds so far, running jobs included up to now.
        config: half-life, quotas, aging.
        now: the current time, seconds since the epoch.

    Example:
        >>> worker = WorkerState("w1", gpu_count=2, free_gpu_indices=(0, 1), cpu_slots=8, free_cpu_slots=8)
        >>> run = QueuedRun(1, "ada", None, priority=0, gpus=2, cpu_slots=1, submitted_at=0.0)
        >>> plan_pass(queued=[run], workers=[worker], usage=UsageTotals(0.0), config=PolicyConfig(), now=0.0).assignments
        (Assignment(run_id=1, worker='w1', gpu_indices=(0, 1), cpu_slots=1),)
    """
    return _Pass(workers, usage, config, now).run(queued)


def never_fits(run: QueuedRun, workers: Sequence[WorkerState], quotas: Quotas) -> str | None:
    """Why `run` could never start on these workers under these quotas, or None if it could.

    Pass every registered worker, online or not. With no worker at all the answer is None:
    a cluster that is still starting up is no reason to refuse a run.
    """
    request = _request(run)
    return _impossible_request(request) or _no_worker_big_enough(request, workers) or _over_quota(run, quotas)


def _request(run: QueuedRun) -> Request:
    return (run.gpus, run.cpu_slots, run.memory_mb, run.needs_isolation)


def _impossible_request(request: Request) -> str | None:
    gpus, cpu_slots, memory, _ = request
    if gpus < 0 or cpu_slots < 0 or memory < 0:
        return "asks for a negative number of GPUs, CPU slots or memory"
    if gpus == 0 and cpu_slots == 0:
        return "asks for no GPUs and no CPU slots; a run needs at least one of them"
    return None


def _over_quota(run: QueuedRun, quotas: Quotas) -> str | None:
    limit = quotas.gpu_limit(run.user)
    if limit is not None and run.gpus > limit:
        return pending_reasons.over_quota(run.gpus, limit)
    return None


def _no_worker_big_enough(request: Request, workers: Sequence[WorkerState]) -> str | None:
    gpus, cpu_slots, memory, _ = request
    if not workers or any(
        w.gpu_count >= gpus and w.cpu_slots >= cpu_slots and (w.memory_mb == 0 or w.memory_mb >= memory)
        for w in workers
    ):
        return None
    most_gpus = max(w.gpu_count for w in workers)
    if gpus > most_gpus:
        return f"asks for {count(gpus, 'GPU')} on one worker; the largest worker has {most_gpus}"
    most_cpu = max(w.cpu_slots for w in workers if w.gpu_count >= gpus)
    if cpu_slots > most_cpu and gpus == 0:
        return f"asks for {count(cpu_slots, 'CPU slot')} on one worker; the largest worker has {most_cpu}"
    if cpu_slots > most_cpu:
        return (
            f"asks for {count(gpus, 'GPU')} and {count(cpu_slots, 'CPU slot')} on one worker; "
            f"workers with {count(gpus, 'GPU')} have at most {most_cpu}"
        )
    most_memory = gigabytes(max(w.memory_mb for w in workers if w.gpu_count >= gpus and w.cpu_slots >= cpu_slots))
    if gpus == 0:
        return f"asks for {gigabytes(memory)} of memory; the largest worker has {most_memory}"
    return (
        f"asks for {count(gpus, 'GPU')} and {gigabytes(memory)} of memory on one worker; "
        f"workers with {count(gpus, 'GPU')} have at most {most_memory}"
    )


def _no_isolated_worker(request: Request, workers: Sequence[WorkerState]) -> str | None:
    """Why no worker that runs code could ever hold this code run, or None if one could."""
    if not request[3] or not workers:  # needs_isolation
        return None
    isolated = [w for w in workers if w.runs_code]
    if not isolated:
        return pending_reasons.NO_ISOLATED_WORKER
    too_small = _no_worker_big_enough(request, isolated)
    return None if too_small is None else pending_reasons.no_isolated_worker_big_enough(too_small)


class _Pass:
    """The state of one pass: free capacity, usage keys, quota counters, and the results."""

    def __init__(self, workers: Sequence[WorkerState], usage: UsageTotals, config: PolicyConfig, now: float):
        self.now = now
        self.config = config
        self.workers = [worker for worker in workers if not worker.draining]  # the ones taking new runs
        self.pool = WorkerPool(self.workers, now)
        self.capacity = ClusterCapacity.of(workers)  # draining workers are still part of the cluster
        aged = usage.decayed_to(now, config.half_life_seconds)
        self.user_usage = dict(aged.by_user)
        self.team_usage = dict(aged.by_team)
        self.gpus_in_use: dict[str, int] = {}
        for worker in workers:
            for job in worker.running:
                self._count_running(job)
        self.shape_problems: dict[Request, str | None] = {}
        self.limits: dict[str, int | None] = {}
        self.assignments: list[Assignment] = []
        self.reasons: dict[int, str] = {}

    def run(self, queued: Sequence[QueuedRun]) -> Plan:
        promoted, rest = self._split_starving(queued)
        order = FairShareOrder(rest, self.user_usage, self.team_usage)
        for starving in promoted:
            self._consider(starving, order, may_start=True)
        while (run := order.next_run()) is not None:
            self._consider(run, order, may_start=True)
            if self.pool.is_full and self.pool.hold is not None:
                break
        for unplaceable in order.remaining():
            self._consider(unplaceable, order, may_start=False)
        hold = self.pool.hold
        return Plan(tuple(self.assignments), self.reasons, None if hold is None else hold.reservation)

    def _count_running(self, job: RunningRun) -> None:
        left = (
            self.config.unknown_duration_seconds if job.expected_end is None else job.expected_end - self.now
        )
        promised = self.capacity.dominant_share(job.gpus, job.cpu_slots, job.memory_mb) * max(0.0, left)
        self.user_usage[job.user] = self.user_usage.get(job.user, 0.0) + promised
        if job.team is not None:
            self.team_usage[job.team] = self.team_usage.get(job.team, 0.0) + promised
        self.gpus_in_use[job.user] = self.gpus_in_use.get(job.user, 0) + job.gpus

    def _split_starving(self, queued: Sequence[QueuedRun]) -> tuple[list[QueuedRun], list[QueuedRun]]:
        patience = self.config.starvation_after_seconds
        if patience is None:
            return [], list(queued)
        cutoff = self.now - patience
        promoted = [run for run in queued if run.submitted_at <= cutoff]
        if not promoted:
            return [], list(queued)
        promoted.sort(key=lambda run: (run.submitted_at, run.id))
        return promoted, [run for run in queued if run.submitted_at > cutoff]

    def _consider(self, run: QueuedRun, order: FairShareOrder, *, may_start: bool) -> None:
        gpus, cpu_slots, user = run.gpus, run.cpu_slots, run.user
        shape = (gpus, cpu_slots, run.memory_mb, run.needs_isolation)  # a `Request`
        shape_problem = (
            self.shape_problems[shape] if shape in self.shape_problems else self._shape_problem(shape)
        )
        if shape_problem is not None:
            self.reasons[run.id] = shape_problem
            return
        limit = self.limits[user] if user in self.limits else self._limit(user)
        in_use = self.gpus_in_use.get(user, 0)
        if limit is not None and gpus > 0 and in_use + gpus > limit:
            self.reasons[run.id] = (
                pending_reasons.over_quota(gpus, limit)
                if gpus > limit
                else pending_reasons.user_quota_full(in_use, limit)
            )
            return
        miss = NO_ROOM
        if may_start:
            duration = run.max_seconds
            ends_at = None if duration is None else self.now + duration
            worker = self.pool.find(shape, ends_at)
            if isinstance(worker, Miss):
                miss = worker
            else:
                gpu_indices = self.pool.place(worker, shape, ends_at)
                self.assignments.append(Assignment(run.id, worker.name, gpu_indices, cpu_slots))
                self.gpus_in_use[user] = in_use + gpus
                share = self.capacity.dominant_share(gpus, cpu_slots, run.memory_mb)
                order.charge(
                    run, share * (self.config.unknown_duration_seconds if duration is None else duration)
                )
                return
        self.reasons[run.id] = self._why_blocked(run, shape, miss)

    def _shape_problem(self, shape: Request) -> str | None:
        problem = (
            _impossible_request(shape)
            or _no_worker_big_enough(shape, self.workers)
            or _no_isolated_worker(shape, self.workers)
        )
        self.shape_problems[shape] = problem
        return problem

    def _limit(self, user: str) -> int | None:
        limit = self.limits[user] = self.config.quotas.gpu_limit(user)
        return limit

    def _why_blocked(self, run: QueuedRun, shape: Request, miss: Miss) -> str:
        pool = self.pool
        if not self.workers:
            return NO_WORKERS
        if miss.blocker == HELD and pool.hold is not None:
            return pending_reasons.reserved_for_other(pool.hold.reservation, self.now)
        if pool.fitted_at_start(shape):
            waiting = pending_reasons.BEHIND_OTHERS
        elif miss.blocker == MEMORY:
            waiting = pending_reasons.waiting_for_memory(run.memory_mb, miss.most_free_memory_mb)
        elif miss.blocker == ISOLATION:
            waiting = pending_reasons.WAITING_FOR_ISOLATED
        else:
            waiting = pending_reasons.waiting_for_room(
                run.gpus, run.cpu_slots, pool.largest_free_gpus, pool.most_free_cpu
            )
        if pool.hold is None:
            reservation = pool.reserve(run.id, shape)
            if reservation is not None:
                return pending_reasons.holds_reservation(waiting, reservation, self.now)
        return waiting
