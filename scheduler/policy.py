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
that no isolated worker could ever hold waits with "no isolated worker"; a run that would
take its user or its team past a quota an admin set (GPUs, CPU slots, memory or runs at
once, GPU-hours in the last 7 days; `scheduler.quotas`) waits with that quota as its
reason ("your quota: 4 of 4 GPUs in use", "team ml's quota: ..."), and other users' runs
go ahead; otherwise it starts on the best-fitting worker that has ALL its GPUs, CPU slots
and memory free (gang placement: never partial) and, for user code, runs code (its sandbox
check held, or the admin allowed unisolated code). Draining workers take nothing new;
their jobs still count for usage and quotas. The first run that finds no room holds the
pass's one reservation and later runs backfill around it without delaying it
(`scheduler.placement`). Once every worker is full the rest only get their reasons.

Multi-node runs (`QueuedRun.nodes` > 1) are gangs: `nodes` distinct workers that each have one
node's share free, all placed in the same pass (one `Assignment` per node, `node_rank` 0..n-1)
or none; fair share and quotas charge the whole gang; a blocked gang reserves the `nodes`
workers that free up soonest and starts when the last of them does.

Durations: a run is expected to run for its estimate (`QueuedRun.expected_minutes`, from
the history of the same recipe or code, at most `max_minutes`) or else its `max_minutes`;
running jobs' `expected_end` is built the same way. Reservations ("starts in about"),
backfill and the share-seconds charged to a placed run all use that expectation. The
reservation is made again at every pass, so a job that outlives its estimate only moves it.
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
    Limits,
    Plan,
    PolicyConfig,
    QueuedRun,
    Quotas,
    Reservation,
    RunningRun,
    WorkerState,
)
from scheduler.quotas import QuotaLedger, over_quota

__all__ = [
    "Assignment",
    "ClusterCapacity",
    "Limits",
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
    "queue_order",
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


def queue_order(
    *,
    queued: Sequence[QueuedRun],
    workers: Sequence[WorkerState],
    usage: UsageTotals,
    config: PolicyConfig,
    now: float,
) -> tuple[list[QueuedRun], dict[str, float], dict[str, float]]:
    """The queue as passes take it, for people to read: aged runs first, then fair-share order.

    Each run is charged its expected share-seconds as it is taken, as if it started, so the
    order is the one runs would start in as room appears. Also returns the usage keys the
    order began from (decayed history plus what running jobs are promised), by user and team.
    """
    state = _Pass(workers, usage, config, now)
    promoted, rest = state._split_starving(queued)
    order = FairShareOrder(rest, state.user_usage, state.team_usage)
    users, teams = dict(state.user_usage), dict(state.team_usage)  # every queued run's user and team included
    for aged in promoted:
        users.setdefault(aged.user, 0.0)
        if aged.team is not None:
            teams.setdefault(aged.team, 0.0)
    ordered = list(promoted)
    while (run := order.next_run()) is not None:
        ordered.append(run)
        duration = run.expected_seconds
        share = state.capacity.dominant_share(run.gpus, run.cpu_slots, run.memory_mb)
        order.charge(run, share * (config.unknown_duration_seconds if duration is None else duration))
    return ordered, users, teams


def never_fits(run: QueuedRun, workers: Sequence[WorkerState], quotas: Quotas) -> str | None:
    """Why `run` could never start on these workers under these quotas, or None if it could.

    Pass every registered worker, online or not. With no worker at all the answer is None:
    a cluster that is still starting up is no reason to refuse a run.
    """
    request = _request(run)
    return (_impossible_request(request) or _no_worker_big_enough(request, workers, run.nodes)
            or over_quota(run, quotas))


def _request(run: QueuedRun) -> Request:
    """What the run needs on each worker (all of it, for a one-worker run)."""
    return run.node_request


def _impossible_request(request: Request) -> str | None:
    gpus, cpu_slots, memory, _ = request
    if gpus < 0 or cpu_slots < 0 or memory < 0:
        return "asks for a negative number of GPUs, CPU slots or memory"
    if gpus == 0 and cpu_slots == 0:
        return "asks for no GPUs and no CPU slots; a run needs at least one of them"
    return None


def _no_worker_big_enough(request: Request, workers: Sequence[WorkerState], nodes: int = 1) -> str | None:
    gpus, cpu_slots, memory, _ = request
    if nodes > 1:
        return _too_few_workers_big_enough(request, workers, nodes)
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


def _too_few_workers_big_enough(request: Request, workers: Sequence[WorkerState], nodes: int) -> str | None:
    """Why fewer than `nodes` workers could ever hold one node of a multi-node run, or None."""
    gpus, cpu_slots, memory, _ = request
    if not workers:
        return None
    big_enough = sum(
        1 for w in workers
        if w.gpu_count >= gpus and w.cpu_slots >= cpu_slots and (w.memory_mb == 0 or w.memory_mb >= memory)
    )
    if big_enough >= nodes:
        return None
    return pending_reasons.gang_never_fits(nodes, gpus, cpu_slots, memory, big_enough)


def _no_isolated_worker(request: Request, workers: Sequence[WorkerState], nodes: int = 1) -> str | None:
    """Why no worker that runs code could ever hold this code run, or None if one could."""
    if not request[3] or not workers:  # needs_isolation
        return None
    isolated = [w for w in workers if w.runs_code]
    if not isolated:
        return pending_reasons.NO_ISOLATED_WORKER
    too_small = _no_worker_big_enough(request, isolated, nodes)
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
        self.quotas = QuotaLedger(config.quotas, usage.week_gpu_seconds_by_user, usage.week_gpu_seconds_by_team)
        for worker in workers:
            for job in worker.running:
                self._count_running(job)
        self.shape_problems: dict[Request, str | None] = {}
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
        self.quotas.hold_running(job)

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
        gpus, cpu_slots = run.gpus, run.cpu_slots
        shape = run.node_request  # a `Request`: the whole run, or one node of a gang
        if run.nodes > 1:
            shape_problem = self._gang_shape_problem(shape, run.nodes)
        else:
            shape_problem = (
                self.shape_problems[shape] if shape in self.shape_problems else self._shape_problem(shape)
            )
        if shape_problem is not None:
            self.reasons[run.id] = shape_problem
            return
        if not self.quotas.off:
            over = self.quotas.blocked(run)
            if over is not None:
                self.reasons[run.id] = over
                return
        miss = NO_ROOM
        if may_start:
            duration = run.expected_seconds
            ends_at = None if duration is None else self.now + duration
            placed = self.pool.find(shape, ends_at) if run.nodes == 1 else self._place_gang(run, shape, ends_at)
            if isinstance(placed, Miss):
                miss = placed
            else:
                if placed is not None:  # one worker; a gang's nodes were placed by `_place_gang`
                    gpu_indices = self.pool.place(placed, shape, ends_at)
                    self.assignments.append(Assignment(run.id, placed.name, gpu_indices, cpu_slots))
                self.quotas.hold(run)
                share = self.capacity.dominant_share(gpus, cpu_slots, run.memory_mb)  # a gang: all its nodes
                order.charge(
                    run, share * (self.config.unknown_duration_seconds if duration is None else duration)
                )
                return
        self.reasons[run.id] = self._why_blocked(run, shape, miss)

    def _place_gang(self, run: QueuedRun, shape: Request, ends_at: float | None) -> Miss | None:
        """Place every node of a multi-node run now (one assignment per node), or none: the Miss."""
        workers = self.pool.find_gang(shape, run.nodes, ends_at)
        if isinstance(workers, Miss):
            return workers
        for node_rank, worker in enumerate(workers):
            gpu_indices = self.pool.place(worker, shape, ends_at)
            self.assignments.append(Assignment(run.id, worker.name, gpu_indices, shape[1], node_rank=node_rank))
        return None

    def _gang_shape_problem(self, shape: Request, nodes: int) -> str | None:
        return (
            _impossible_request(shape)
            or _no_worker_big_enough(shape, self.workers, nodes)
            or _no_isolated_worker(shape, self.workers, nodes)
        )

    def _shape_problem(self, shape: Request) -> str | None:
        problem = (
            _impossible_request(shape)
            or _no_worker_big_enough(shape, self.workers)
            or _no_isolated_worker(shape, self.workers)
        )
        self.shape_problems[shape] = problem
        return problem

    def _why_blocked(self, run: QueuedRun, shape: Request, miss: Miss) -> str:
        pool = self.pool
        if not self.workers:
            return NO_WORKERS
        if miss.blocker == HELD and pool.hold is not None:
            return pending_reasons.reserved_for_other(pool.hold.reservation, self.now)
        gang = run.nodes > 1
        if pool.fitted_gang_at_start(shape, run.nodes) if gang else pool.fitted_at_start(shape):
            waiting = pending_reasons.BEHIND_OTHERS
        elif gang:
            waiting = pending_reasons.waiting_for_gang(run.nodes, shape[0], shape[1], shape[2], miss.available)
        elif miss.blocker == MEMORY:
            waiting = pending_reasons.waiting_for_memory(run.memory_mb, miss.most_free_memory_mb)
        elif miss.blocker == ISOLATION:
            waiting = pending_reasons.WAITING_FOR_ISOLATED
        else:
            waiting = pending_reasons.waiting_for_room(
                run.gpus, run.cpu_slots, pool.largest_free_gpus, pool.most_free_cpu
            )
        if pool.hold is None:
            reservation = pool.reserve(run.id, shape, run.nodes)
            if reservation is not None:
                return pending_reasons.holds_reservation(waiting, reservation, self.now)
        return waiting
