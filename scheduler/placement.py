"""Where a run fits during one pass: free GPUs and CPU slots per worker, and the one reservation.

Workers are indexed by how many GPUs they have free, so finding a gang of N GPUs looks at
the buckets N, N+1, ... only (best fit: the smallest free block that holds the gang).
Within a bucket CPU-only workers come first, then by name, which keeps CPU-only runs off
GPU machines while CPU-only machines have room. Capacity only shrinks during a pass, so a
request that failed once fails for the rest of it and is remembered.

Backfill is EASY backfilling with one reservation: the first run in policy order that is
blocked for lack of room gets the worker where it can start soonest (from the expected
ends of jobs there). Any later run may still start anywhere else, and on that worker too
if it is sure to end before the reservation starts (its `max_minutes` is enforced) or if it
only uses room the reserved run will not need.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.policy_types import Reservation, WorkerState


class _FreeWorker:
    """Mutable view of one worker for the length of a pass."""

    __slots__ = ("cpu_slots", "free_cpu", "free_gpus", "gpu_count", "name", "releases", "sort_key")

    def __init__(self, worker: WorkerState):
        self.name = worker.name
        self.gpu_count = worker.gpu_count
        self.cpu_slots = worker.cpu_slots
        self.free_gpus = sorted(worker.free_gpu_indices)
        self.free_cpu = worker.free_cpu_slots
        self.sort_key = (worker.gpu_count > 0, worker.name)
        # (time, gpus, cpu_slots) handed back when a job ends; math.inf when it has no limit.
        self.releases = [
            (math.inf if job.expected_end is None else job.expected_end, job.gpus, job.cpu_slots)
            for job in worker.running
        ]


@dataclass(slots=True)
class _Hold:
    """The reservation while the pass runs: what the reserved worker can still spare."""

    reservation: Reservation
    worker: _FreeWorker
    spare_gpus: int
    spare_cpu: int

    def leaves_room(self, gpus: int, cpu_slots: int) -> bool:
        """True when a job that outlives the reservation's start still leaves it enough."""
        return (gpus == 0 or gpus <= self.spare_gpus) and (cpu_slots == 0 or cpu_slots <= self.spare_cpu)


class WorkerPool:
    """Free capacity of every worker, indexed by free-GPU count, plus the pass's reservation."""

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
        self._start_cpu_for_gpus = self._most_cpu_with_gpus()
        self._failed: dict[tuple[int, int, bool], bool] = {}
        self.hold: _Hold | None = None

    @property
    def is_full(self) -> bool:
        return self.largest_free_gpus == 0 and self.most_free_cpu == 0

    def fitted_at_start(self, gpus: int, cpu_slots: int) -> bool:
        """Whether this request fitted somewhere before the pass placed anything."""
        table = self._start_cpu_for_gpus
        return gpus < len(table) and cpu_slots <= table[gpus]

    def find(self, gpus: int, cpu_slots: int, ends_at: float | None) -> tuple[_FreeWorker | None, bool]:
        """A worker that can start this request now, and whether the reservation alone stopped it."""
        if gpus > self.largest_free_gpus or cpu_slots > self.most_free_cpu:
            return None, False
        hold = self.hold
        ends_first = hold is not None and _ends_before(ends_at, hold.reservation.start_at)
        if ends_first and hold is not None:
            gap = hold.worker
            if len(gap.free_gpus) >= gpus and gap.free_cpu >= cpu_slots:
                return gap, False
        key = (gpus, cpu_slots, ends_first)
        if key in self._failed:
            return None, self._failed[key]
        held_back = False
        for free in range(gpus, self.largest_free_gpus + 1):
            for worker in self._buckets[free]:
                if worker.free_cpu < cpu_slots:
                    continue
                if (
                    hold is not None
                    and worker is hold.worker
                    and not ends_first
                    and not hold.leaves_room(gpus, cpu_slots)
                ):
                    held_back = True
                    continue
                return worker, False
        self._failed[key] = held_back
        return None, held_back

    def place(self, worker: _FreeWorker, gpus: int, cpu_slots: int, ends_at: float | None) -> tuple[int, ...]:
        """Take `gpus` GPUs (lowest indices) and `cpu_slots` slots on `worker`; returns the GPU indices."""
        taken = tuple(worker.free_gpus[:gpus])
        bucket = self._buckets[len(worker.free_gpus)]
        del bucket[bisect.bisect_left(bucket, worker.sort_key, key=_sort_key)]
        del worker.free_gpus[:gpus]
        worker.free_cpu -= cpu_slots
        bisect.insort(self._buckets[len(worker.free_gpus)], worker, key=_sort_key)
        worker.releases.append((math.inf if ends_at is None else ends_at, gpus, cpu_slots))
        hold = self.hold
        if (
            hold is not None
            and worker is hold.worker
            and not _ends_before(ends_at, hold.reservation.start_at)
        ):
            hold.spare_gpus -= gpus
            hold.spare_cpu -= cpu_slots
        while self.largest_free_gpus > 0 and not self._buckets[self.largest_free_gpus]:
            self.largest_free_gpus -= 1
        if worker.free_cpu + cpu_slots == self.most_free_cpu:
            self.most_free_cpu = max(w.free_cpu for w in self._workers)
        return taken

    def reserve(self, run_id: int, gpus: int, cpu_slots: int) -> Reservation | None:
        """Hold the worker where this blocked request can start soonest; None if none is big enough."""
        best: tuple[tuple[bool, float, int, int, str], _FreeWorker, float | None] | None = None
        for worker in self._workers:
            if worker.gpu_count < gpus or worker.cpu_slots < cpu_slots:
                continue
            start_at = _earliest_start(worker, gpus, cpu_slots, self.now)
            gpu_gap = max(0, gpus - len(worker.free_gpus))
            cpu_gap = max(0, cpu_slots - worker.free_cpu)
            rank = (start_at is None, start_at or 0.0, gpu_gap, cpu_gap, worker.name)
            if best is None or rank < best[0]:
                best = (rank, worker, start_at)
        if best is None:
            return None
        _, worker, start_at = best
        free_gpus, free_cpu = _free_at(worker, math.inf if start_at is None else start_at)
        reservation = Reservation(run_id, worker.name, start_at, gpus, cpu_slots)
        self.hold = _Hold(reservation, worker, free_gpus - gpus, free_cpu - cpu_slots)
        self._failed.clear()
        return reservation

    def _most_cpu_with_gpus(self) -> list[int]:
        most = [-1] * (self.largest_free_gpus + 1)
        for worker in self._workers:
            free = len(worker.free_gpus)
            most[free] = max(most[free], worker.free_cpu)
        for free in range(len(most) - 2, -1, -1):
            most[free] = max(most[free], most[free + 1])
        return most


def _sort_key(worker: _FreeWorker) -> tuple[bool, str]:
    return worker.sort_key


def _ends_before(ends_at: float | None, start_at: float | None) -> bool:
    return ends_at is not None and start_at is not None and ends_at <= start_at


def _earliest_start(worker: _FreeWorker, gpus: int, cpu_slots: int, now: float) -> float | None:
    """When enough will be free on `worker` if jobs end at their expected ends; None if never known."""
    free_gpus, free_cpu = len(worker.free_gpus), worker.free_cpu
    if free_gpus >= gpus and free_cpu >= cpu_slots:
        return now
    for ends_at, released_gpus, released_cpu in sorted(worker.releases):
        if ends_at == math.inf:
            return None
        free_gpus += released_gpus
        free_cpu += released_cpu
        if free_gpus >= gpus and free_cpu >= cpu_slots:
            return max(ends_at, now)  # a job past its expected end is taken to end now
    return None


def _free_at(worker: _FreeWorker, when: float) -> tuple[int, int]:
    """GPUs and CPU slots free on `worker` at `when` (math.inf: once every timed job has ended)."""
    free_gpus, free_cpu = len(worker.free_gpus), worker.free_cpu
    for ends_at, released_gpus, released_cpu in worker.releases:
        if ends_at <= when and ends_at != math.inf:
            free_gpus += released_gpus
            free_cpu += released_cpu
    return free_gpus, free_cpu
