"""A small discrete-event simulator that drives the placement policy over simulated time.

At every instant something happens (a job ends, a run arrives) it hands the cluster to
`plan_pass` and starts what the plan says, checking each assignment against the rules
every real pass must keep: a gang is whole and on one worker, GPUs, CPU slots and memory
are never handed out twice, code runs only where code may run, quotas hold, and every run
left queued has a reason.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scheduler.policy import (
    ClusterCapacity,
    Plan,
    PolicyConfig,
    QueuedRun,
    RunningRun,
    UsageRecord,
    UsageTotals,
    WorkerState,
    plan_pass,
    usage_totals,
)


@dataclass(frozen=True)
class SimWorker:
    name: str
    gpu_count: int
    cpu_slots: int
    memory_mb: int = 0  # 0: unknown, not limited
    runs_code: bool = True


@dataclass(frozen=True)
class SimJob:
    """A run to submit, and how long it really runs (at most its `max_minutes`)."""

    id: int
    user: str
    gpus: int
    minutes: float
    max_minutes: float | None = None
    team: str | None = None
    priority: int = 0
    cpu_slots: int = 1
    submit_at: float = 0.0
    memory_mb: int = 0
    code: bool = False


@dataclass(frozen=True)
class Started:
    run: QueuedRun
    worker: str
    gpu_indices: tuple[int, ...]
    started_at: float
    ended_at: float


class _LiveWorker:
    def __init__(self, spec: SimWorker):
        self.spec = spec
        self.free_gpus = set(range(spec.gpu_count))
        self.free_cpu = spec.cpu_slots
        self.free_memory = spec.memory_mb
        self.running: dict[int, RunningRun] = {}

    def state(self) -> WorkerState:
        s = self.spec
        return WorkerState(
            s.name,
            s.gpu_count,
            tuple(sorted(self.free_gpus)),
            s.cpu_slots,
            self.free_cpu,
            tuple(self.running.values()),
            memory_mb=s.memory_mb,
            free_memory_mb=self.free_memory,
            runs_code=s.runs_code,
        )


class _Feed:
    """A user who keeps `backlog` runs queued until their list runs out."""

    def __init__(self, jobs: Sequence[SimJob], backlog: int):
        self.jobs = deque(jobs)
        self.backlog = backlog
        self.queued: set[int] = set()


class Simulator:
    """Drives `plan_pass` over simulated seconds; read `started`, `drained_at` and the like after `run`."""

    def __init__(self, workers: Sequence[SimWorker], config: PolicyConfig, *, start: float = 0.0):
        self.config = config
        self.now = start
        self.workers = {spec.name: _LiveWorker(spec) for spec in workers}
        self.queued: dict[int, QueuedRun] = {}
        self.started: dict[int, Started] = {}  # in the order the runs started
        self.drained_at: dict[str, float] = {}
        self.passes = 0
        self.first_promised_start: dict[int, float] = {}
        self.last_plan: Plan | None = None
        self._jobs: dict[int, SimJob] = {}
        self._arrivals: list[tuple[float, int, SimJob]] = []
        self._feeds: dict[str, _Feed] = {}
        self._endings: list[tuple[float, int]] = []
        self._history = UsageTotals(start)
        self.capacity = ClusterCapacity.of(live.state() for live in self.workers.values())

    def submit_at(self, jobs: Iterable[SimJob]) -> None:
        """Each job arrives at its own `submit_at`."""
        for job in jobs:
            heapq.heappush(self._arrivals, (job.submit_at, job.id, job))

    def feed(self, user: str, jobs: Sequence[SimJob], *, backlog: int) -> None:
        """`user` submits `jobs` in order, keeping `backlog` of them queued at all times."""
        self._feeds[user] = _Feed(jobs, backlog)

    def run(self, *, until: float = math.inf) -> None:
        """Advance from event to event until nothing is left to happen (or `until`)."""
        while True:
            self._end_jobs()
            self._admit_arrivals()
            self._top_up_feeds()
            if self.queued:
                self._apply(
                    plan_pass(
                        queued=list(self.queued.values()),
                        workers=self._states(),
                        usage=self._usage(),
                        config=self.config,
                        now=self.now,
                    )
                )
            upcoming = min(
                self._endings[0][0] if self._endings else math.inf,
                self._arrivals[0][0] if self._arrivals else math.inf,
            )
            if upcoming == math.inf or upcoming > until:
                return
            self.now = upcoming

    def share_seconds_by_user(self, until: float) -> dict[str, float]:
        """Dominant-share-seconds each user's jobs ran between the start and `until`."""
        used: dict[str, float] = {}
        for record in self.started.values():
            seconds = max(0.0, min(record.ended_at, until) - record.started_at)
            used[record.run.user] = used.get(record.run.user, 0.0) + seconds * self._share(record.run)
        return used

    def gpu_seconds_by_user(self, until: float) -> dict[str, float]:
        """GPU-seconds each user's jobs ran between the start and `until`."""
        used: dict[str, float] = {}
        for record in self.started.values():
            seconds = max(0.0, min(record.ended_at, until) - record.started_at)
            used[record.run.user] = used.get(record.run.user, 0.0) + seconds * record.run.gpus
        return used

    def _states(self) -> list[WorkerState]:
        return [live.state() for live in self.workers.values()]

    def _usage(self) -> UsageTotals:
        running = [
            UsageRecord(job.user, job.team, self._share(job) * (self.now - self.started[job.run_id].started_at), None)
            for live in self.workers.values()
            for job in live.running.values()
        ]
        return usage_totals(
            running, now=self.now, half_life_seconds=self.config.half_life_seconds, base=self._history
        )

    def _end_jobs(self) -> None:
        while self._endings and self._endings[0][0] <= self.now:
            _, run_id = heapq.heappop(self._endings)
            record = self.started[run_id]
            live = self.workers[record.worker]
            del live.running[run_id]
            live.free_gpus.update(record.gpu_indices)
            live.free_cpu += record.run.cpu_slots
            live.free_memory += record.run.memory_mb
            used = self._share(record.run) * (record.ended_at - record.started_at)
            finished = UsageRecord(record.run.user, record.run.team, used, record.ended_at)
            self._history = usage_totals(
                [finished], now=self.now, half_life_seconds=self.config.half_life_seconds, base=self._history
            )

    def _share(self, run: QueuedRun | RunningRun) -> float:
        return self.capacity.dominant_share(run.gpus, run.cpu_slots, run.memory_mb)

    def _admit_arrivals(self) -> None:
        while self._arrivals and self._arrivals[0][0] <= self.now:
            self._submit(heapq.heappop(self._arrivals)[2])

    def _top_up_feeds(self) -> None:
        for user, feed in self._feeds.items():
            while feed.jobs and len(feed.queued) < feed.backlog:
                job = feed.jobs.popleft()
                feed.queued.add(job.id)
                self._submit(job)
            if not feed.jobs and not feed.queued:
                self.drained_at.setdefault(user, self.now)

    def _submit(self, job: SimJob) -> None:
        self._jobs[job.id] = job
        self.queued[job.id] = QueuedRun(
            job.id, job.user, job.team, job.priority, job.gpus, job.cpu_slots, self.now, job.max_minutes,
            job.memory_mb, job.code,
        )

    def _apply(self, plan: Plan) -> None:
        self.passes += 1
        self.last_plan = plan
        held = plan.reservation
        if held is not None and held.start_at is not None:
            self.first_promised_start.setdefault(held.run_id, held.start_at)
        placed = {a.run_id for a in plan.assignments}
        assert placed.isdisjoint(plan.pending_reasons), "a run is both started and pending"
        assert placed | set(plan.pending_reasons) == set(self.queued), (
            "every queued run is started or has a reason"
        )
        gpus_in_use = self._gpus_in_use()
        for assignment in plan.assignments:
            run = self.queued.pop(assignment.run_id)
            live = self.workers[assignment.worker]
            indices = set(assignment.gpu_indices)
            assert len(indices) == len(assignment.gpu_indices) == run.gpus, (
                f"run {run.id}: partial or duplicated gang"
            )
            assert indices <= live.free_gpus, f"run {run.id}: GPUs {indices - live.free_gpus} are not free"
            assert assignment.cpu_slots == run.cpu_slots <= live.free_cpu, f"run {run.id}: CPU slots not free"
            assert not live.spec.memory_mb or run.memory_mb <= live.free_memory, f"run {run.id}: memory not free"
            assert live.spec.runs_code or not run.needs_isolation, f"run {run.id}: code on an unisolated worker"
            gpus_in_use[run.user] = gpus_in_use.get(run.user, 0) + run.gpus
            limit = self.config.quotas.for_user(run.user).gpus
            assert limit is None or gpus_in_use[run.user] <= limit, f"run {run.id}: user quota exceeded"
            self._start(run, live, assignment.gpu_indices)

    def _start(self, run: QueuedRun, live: _LiveWorker, gpu_indices: tuple[int, ...]) -> None:
        job = self._jobs[run.id]
        live.free_gpus.difference_update(gpu_indices)
        live.free_cpu -= run.cpu_slots
        live.free_memory -= run.memory_mb
        expected_end = None if run.max_seconds is None else self.now + run.max_seconds
        live.running[run.id] = RunningRun(
            run.id, run.user, run.team, run.gpus, run.cpu_slots, expected_end, run.memory_mb
        )
        ended_at = self.now + job.minutes * 60.0
        self.started[run.id] = Started(run, live.spec.name, gpu_indices, self.now, ended_at)
        heapq.heappush(self._endings, (ended_at, run.id))
        feed = self._feeds.get(run.user)
        if feed is not None:
            feed.queued.discard(run.id)

    def _gpus_in_use(self) -> dict[str, int]:
        in_use: dict[str, int] = {}
        for live in self.workers.values():
            for job in live.running.values():
                in_use[job.user] = in_use.get(job.user, 0) + job.gpus
        return in_use
