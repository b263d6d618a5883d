"""Where a run fits during one pass: free GPUs, CPU slots and memory per worker, and the one reservation.

Workers are indexed by how many GPUs they have free, so finding a gang of N GPUs looks at
the buckets N, N+1, ... only (best fit: the smallest free block that holds the gang).
Within a bucket CPU-only workers come first, then by name, which keeps CPU-only runs off
GPU machines while CPU-only machines have room. Capacity only shrinks during a pass, so a
request that failed once fails for the rest of it and is remembered. A worker whose memory
is unknown (0) is not limited by memory; a code run only goes to a worker that `runs_code`.

Multi-node runs (a gang of `nodes` workers, `find_gang`) need `nodes` distinct workers that each
have a node's share free right now: all of them start together or none does.

Backfill is EASY backfilling with one reservation: the first run in policy order that is
blocked for lack of room gets the worker where it can start soonest (from the expected
ends of jobs there); a blocked gang gets the `nodes` workers that together free up soonest,
and its start is the latest of theirs. Any later run may still start anywhere else, and on
a reserved worker too if it is sure to end before the reservation starts (its `max_minutes`
is enforced) or if it only uses room the reserved run will not need there.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from scheduler.policy_types import Reservation, WorkerState

# Why `WorkerPool.find` found no worker, most telling first.
HELD = "held"  # only the reservation stopped it
MEMORY = "memory"  # workers with the GPUs and CPU slots free lack the memory
ISOLATION = "isolation"  # the workers with room may not run code
ROOM = "room"  # no worker has the GPUs and CPU slots free


# What one run needs on one worker: (gpus, cpu_slots, memory_mb, needs_isolation). A plain tuple,
# made once per queued run per pass, so it is cheap to build and hash.
Request = tuple[int, int, int, bool]


class Miss(NamedTuple):
    """`find`'s answer when nothing fits: the blocker, and (for MEMORY) the most free where the rest fit.

    `available`: for a gang, how many workers could take a node now (fewer than it needs)."""

    blocker: str
    most_free_memory_mb: float = 0.0
    available: int = 0


NO_ROOM = Miss(ROOM)


class _FreeWorker:
    """Mutable view of one worker for the length of a pass."""

    __slots__ = (
        "cpu_slots", "free_cpu", "free_gpus", "free_memory", "gpu_count", "memory", "name", "releases",
        "runs_code", "sort_key",
    )

    def __init__(self, worker: WorkerState):
        self.name = worker.name
        self.gpu_count = worker.gpu_count
        self.cpu_slots = worker.cpu_slots
        self.free_gpus = sorted(worker.free_gpu_indices)
        self.free_cpu = worker.free_cpu_slots
        known = worker.memory_mb > 0
        self.memory: float = worker.memory_mb if known else math.inf
        self.free_memory: float = worker.free_memory_mb if known else math.inf
        self.runs_code = worker.runs_code
        self.sort_key = (worker.gpu_count > 0, worker.name)
        # (time, gpus, cpu_slots, memory_mb) handed back when a job ends; math.inf when it has no limit.
        self.releases = [
            (math.inf if job.expected_end is None else job.expected_end, job.gpus, job.cpu_slots, job.memory_mb)
            for job in worker.running
        ]

    def fits_now(self, request: Request) -> bool:
        gpus, cpu_slots, memory, code = request
        return (
            len(self.free_gpus) >= gpus
            and self.free_cpu >= cpu_slots
            and self.free_memory >= memory
            and (self.runs_code or not code)
        )


@dataclass(slots=True)
class _Spare:
    """What one reserved worker can still spare for jobs that outlive the reservation's start."""

    gpus: int
    cpu: int
    memory: float

    def leaves_room(self, request: Request) -> bool:
        gpus, cpu_slots, memory, _ = request
        return (
            (gpus == 0 or gpus <= self.gpus)
            and (cpu_slots == 0 or cpu_slots <= self.cpu)
            and (memory == 0 or memory <= self.memory)
        )


@dataclass(slots=True)
class _Hold:
    """The reservation while the pass runs: its worker (a gang's workers) and what each can still spare."""

    reservation: Reservation
    workers: list[_FreeWorker]
    spares: dict[str, _Spare]

    def blocks(self, worker: _FreeWorker, request: Request, ends_first: bool) -> bool:
        """True when `worker` is reserved and a job there that outlives the start would take what it needs."""
        spare = self.spares.get(worker.name)
        return spare is not None and not ends_first and not spare.leaves_room(request)


class WorkerPool:
    """Free capacity of the workers that take new runs, indexed by free-GPU count, plus the reservation."""

    def __init__(self, workers: Sequence[WorkerState], now: float):
        self.now = now
        self._workers = [
            _FreeWorker(worker) for worker in sorted(workers, key=lambda w: (w.gpu_count > 0, w.name))
        ]
        top = max((len(worker.free_gpus) for worker in self._workers), default=0)
        self._buckets: list[list[_FreeWorker]] = [[] for _ in range(top + 1)]
        for worker in self._workers:
            self._buckets[len(worker.free_gpus)].append(worker)
        self.largest_free_gpus = top
        self.most_free_cpu = max((worker.free_cpu for worker in self._workers), default=0)
        self.most_free_memory = max((worker.free_memory for worker in self._workers), default=0.0)
        self._at_start = [
            (len(worker.free_gpus), worker.free_cpu, worker.free_memory, worker.runs_code) for worker in self._workers
        ]
        self._fitted: dict[Request, bool] = {}
        self._failed: dict[tuple[Request, bool], Miss] = {}
        self.hold: _Hold | None = None

    @property
    def is_full(self) -> bool:
        return self.largest_free_gpus == 0 and self.most_free_cpu == 0

    def fitted_at_start(self, request: Request) -> bool:
        """Whether this request fitted somewhere before the pass placed anything."""
        fitted = self._fitted.get(request)
        if fitted is None:
            gpus, cpu_slots, memory, code = request
            fitted = self._fitted[request] = any(
                free_gpus >= gpus and free_cpu >= cpu_slots and free_memory >= memory and (runs_code or not code)
                for free_gpus, free_cpu, free_memory, runs_code in self._at_start
            )
        return fitted

    def find(self, request: Request, ends_at: float | None) -> _FreeWorker | Miss:
        """A worker that can start this request now, or what stopped it."""
        gpus, cpu_slots, memory, code = request
        if gpus > self.largest_free_gpus or cpu_slots > self.most_free_cpu:
            return NO_ROOM
        if memory > self.most_free_memory:
            return Miss(MEMORY, self.most_free_memory)
        hold = self.hold
        ends_first = hold is not None and _ends_before(ends_at, hold.reservation.start_at)
        if ends_first and hold is not None:
            for held in hold.workers:
                if held.fits_now(request):
                    return held
        key = (request, ends_first)
        miss = self._failed.get(key)
        if miss is not None:
            return miss
        held_back = unisolated_room = False
        most_free_memory = -1.0  # on workers with the GPUs and CPU slots free
        for free in range(gpus, self.largest_free_gpus + 1):
            for worker in self._buckets[free]:
                if worker.free_cpu < cpu_slots or (code and not worker.runs_code and worker.free_memory < memory):
                    continue
                if worker.free_memory < memory:
                    most_free_memory = max(most_free_memory, worker.free_memory)
                    continue
                if code and not worker.runs_code:
                    unisolated_room = True
                    continue
                if hold is not None and hold.blocks(worker, request, ends_first):
                    held_back = True
                    continue
                return worker
        if held_back:
            miss = Miss(HELD)
        elif most_free_memory >= 0:
            miss = Miss(MEMORY, most_free_memory)
        else:
            miss = Miss(ISOLATION) if unisolated_room else NO_ROOM
        self._failed[key] = miss
        return miss

    def find_gang(self, request: Request, nodes: int, ends_at: float | None) -> list[_FreeWorker] | Miss:
        """`nodes` distinct workers that can each start one node of this request now, or what stopped it.

        `request` is one node's share. The same best fit as `find`, worker by worker."""
        gpus, cpu_slots, memory, code = request
        hold = self.hold
        ends_first = hold is not None and _ends_before(ends_at, hold.reservation.start_at)
        chosen: list[_FreeWorker] = []
        held_back = unisolated_room = False
        most_free_memory = -1.0
        for free in range(gpus, self.largest_free_gpus + 1):
            for worker in self._buckets[free]:
                if worker.free_cpu < cpu_slots:
                    continue
                if worker.free_memory < memory:
                    most_free_memory = max(most_free_memory, worker.free_memory)
                    continue
                if code and not worker.runs_code:
                    unisolated_room = True
                    continue
                if hold is not None and hold.blocks(worker, request, ends_first):
                    held_back = True
                    continue
                chosen.append(worker)
                if len(chosen) == nodes:
                    return chosen
        available = len(chosen)
        if held_back:
            return Miss(HELD, available=available)
        if most_free_memory >= 0 and not available:
            return Miss(MEMORY, most_free_memory, available)
        return Miss(ISOLATION, available=available) if unisolated_room and not available else Miss(ROOM, available=available)

    def fitted_gang_at_start(self, request: Request, nodes: int) -> bool:
        """Whether `nodes` workers could each hold one node of this request before the pass placed anything."""
        gpus, cpu_slots, memory, code = request
        fitting = sum(
            1 for free_gpus, free_cpu, free_memory, runs_code in self._at_start
            if free_gpus >= gpus and free_cpu >= cpu_slots and free_memory >= memory and (runs_code or not code)
        )
        return fitting >= nodes

    def place(self, worker: _FreeWorker, request: Request, ends_at: float | None) -> tuple[int, ...]:
        """Take the request's GPUs (lowest indices), CPU slots and memory on `worker`; returns the GPU indices."""
        gpus, cpu_slots, memory, _ = request
        taken = tuple(worker.free_gpus[:gpus])
        bucket = self._buckets[len(worker.free_gpus)]
        del bucket[bisect.bisect_left(bucket, worker.sort_key, key=_sort_key)]
        del worker.free_gpus[:gpus]
        worker.free_cpu -= cpu_slots
        worker.free_memory -= memory
        bisect.insort(self._buckets[len(worker.free_gpus)], worker, key=_sort_key)
        worker.releases.append((math.inf if ends_at is None else ends_at, gpus, cpu_slots, memory))
        hold = self.hold
        spare = None if hold is None else hold.spares.get(worker.name)
        if spare is not None and hold is not None and not _ends_before(ends_at, hold.reservation.start_at):
            spare.gpus -= gpus
            spare.cpu -= cpu_slots
            spare.memory -= memory
        while self.largest_free_gpus > 0 and not self._buckets[self.largest_free_gpus]:
            self.largest_free_gpus -= 1
        if worker.free_cpu + cpu_slots == self.most_free_cpu:
            self.most_free_cpu = max(w.free_cpu for w in self._workers)
        if memory and worker.free_memory != math.inf and worker.free_memory + memory == self.most_free_memory:
            self.most_free_memory = max(w.free_memory for w in self._workers)
        return taken

    def reserve(self, run_id: int, request: Request, nodes: int = 1) -> Reservation | None:
        """Hold the worker (a gang: the `nodes` workers) where this blocked request can start soonest.

        None if not enough workers are big enough. A gang starts when the last of its workers is free."""
        gpus, cpu_slots, memory, code = request
        ranked: list[tuple[tuple[bool, float, int, int, float, str], _FreeWorker, float | None]] = []
        for worker in self._workers:
            if (
                worker.gpu_count < gpus
                or worker.cpu_slots < cpu_slots
                or worker.memory < memory
                or (code and not worker.runs_code)
            ):
                continue
            start_at = _earliest_start(worker, request, self.now)
            gpu_gap = max(0, gpus - len(worker.free_gpus))
            cpu_gap = max(0, cpu_slots - worker.free_cpu)
            memory_gap = max(0.0, memory - worker.free_memory)
            ranked.append(((start_at is None, start_at or 0.0, gpu_gap, cpu_gap, memory_gap, worker.name),
                           worker, start_at))
        if len(ranked) < nodes:
            return None
        ranked.sort(key=lambda entry: entry[0])
        chosen = ranked[:nodes]
        starts = [start_at for _, _, start_at in chosen]
        start_at = None if any(start is None for start in starts) else max(s for s in starts if s is not None)
        spares = {}
        for _, worker, _ in chosen:
            free_gpus, free_cpu, free_memory = _free_at(worker, math.inf if start_at is None else start_at)
            spares[worker.name] = _Spare(free_gpus - gpus, free_cpu - cpu_slots, free_memory - memory)
        workers = [worker for _, worker, _ in chosen]
        reservation = Reservation(run_id, workers[0].name, start_at, gpus, cpu_slots, memory,
                                  workers=tuple(worker.name for worker in workers) if nodes > 1 else ())
        self.hold = _Hold(reservation, workers, spares)
        self._failed.clear()
        return reservation


def _sort_key(worker: _FreeWorker) -> tuple[bool, str]:
    return worker.sort_key


def _ends_before(ends_at: float | None, start_at: float | None) -> bool:
    return ends_at is not None and start_at is not None and ends_at <= start_at


def _earliest_start(worker: _FreeWorker, request: Request, now: float) -> float | None:
    """When enough will be free on `worker` if jobs end at their expected ends; None if never known."""
    gpus, cpu_slots, memory, _ = request
    free_gpus, free_cpu, free_memory = len(worker.free_gpus), worker.free_cpu, worker.free_memory
    if free_gpus >= gpus and free_cpu >= cpu_slots and free_memory >= memory:
        return now
    for ends_at, released_gpus, released_cpu, released_memory in sorted(worker.releases):
        if ends_at == math.inf:
            return None
        free_gpus += released_gpus
        free_cpu += released_cpu
        free_memory += released_memory
        if free_gpus >= gpus and free_cpu >= cpu_slots and free_memory >= memory:
            return max(ends_at, now)  # a job past its expected end is taken to end now
    return None


def _free_at(worker: _FreeWorker, when: float) -> tuple[int, int, float]:
    """GPUs, CPU slots and memory free on `worker` at `when` (math.inf: once every timed job has ended)."""
    free_gpus, free_cpu, free_memory = len(worker.free_gpus), worker.free_cpu, worker.free_memory
    for ends_at, released_gpus, released_cpu, released_memory in worker.releases:
        if ends_at <= when and ends_at != math.inf:
            free_gpus += released_gpus
            free_cpu += released_cpu
            free_memory += released_memory
    return free_gpus, free_cpu, free_memory
