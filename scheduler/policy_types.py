"""What one scheduling pass reads and returns: frozen dataclasses, no Django, no I/O.

All times are seconds since the epoch (floats); the loop converts its datetimes with
`.timestamp()`. A run needs all of its `gpus`, `cpu_slots` and `memory_mb` on ONE worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DAY_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run in state `queued`, as the policy sees it.

    `priority` orders a user's own runs (higher first); `max_minutes` is the wall-clock
    limit from the run's spec (`resources.max_minutes`), None when it has none.
    `memory_mb` is the host memory it may use; `needs_isolation` is True for user code,
    which may only go to workers that `runs_code`.
    """

    id: int
    user: str
    team: str | None
    priority: int
    gpus: int
    cpu_slots: int
    submitted_at: float
    max_minutes: float | None = None
    memory_mb: int = 0
    needs_isolation: bool = False

    @property
    def max_seconds(self) -> float | None:
        return None if self.max_minutes is None else self.max_minutes * 60.0


@dataclass(frozen=True, slots=True)
class RunningRun:
    """A run holding resources on a worker; `expected_end` is None when it has no time limit."""

    run_id: int
    user: str
    team: str | None
    gpus: int
    cpu_slots: int
    expected_end: float | None
    memory_mb: int = 0


@dataclass(frozen=True, slots=True)
class WorkerState:
    """One online worker: its size, what is free on it now, and what runs on it.

    `memory_mb` 0 means its memory is unknown: memory does not limit what goes there.
    `runs_code`: its sandbox check held (or the admin allowed unisolated code).
    A `draining` worker is stopping: nothing new goes there, but its jobs still count.
    """

    name: str
    gpu_count: int
    free_gpu_indices: tuple[int, ...]
    cpu_slots: int
    free_cpu_slots: int
    running: tuple[RunningRun, ...] = ()
    memory_mb: int = 0
    free_memory_mb: int = 0
    runs_code: bool = False
    draining: bool = False


@dataclass(frozen=True, slots=True)
class ClusterCapacity:
    """What the online workers hold together; the denominators of dominant-resource fairness.

    A dimension the cluster has none of (no GPUs, memory unknown everywhere) is left out.
    """

    gpus: int = 0
    cpu_slots: int = 0
    memory_mb: int = 0

    @classmethod
    def of(cls, workers: Iterable[WorkerState]) -> ClusterCapacity:
        gpus = cpu_slots = memory_mb = 0
        for worker in workers:
            gpus += worker.gpu_count
            cpu_slots += worker.cpu_slots
            memory_mb += worker.memory_mb
        return cls(gpus, cpu_slots, memory_mb)

    def dominant_share(self, gpus: int, cpu_slots: int, memory_mb: int) -> float:
        """The largest fraction of the cluster this request takes of any one resource (at most 1).

        Example:
            >>> ClusterCapacity(gpus=8, cpu_slots=64, memory_mb=256 * 1024).dominant_share(0, 16, 32 * 1024)
            0.25
        """
        share = 0.0
        if self.gpus:
            share = gpus / self.gpus
        if self.cpu_slots:
            share = max(share, cpu_slots / self.cpu_slots)
        if self.memory_mb:
            share = max(share, memory_mb / self.memory_mb)
        return min(1.0, share)


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per-user limits on GPUs held at once; None means unlimited."""

    default_gpus: int | None = None
    per_user: Mapping[str, int] = field(default_factory=dict)

    def gpu_limit(self, user: str) -> int | None:
        return self.per_user.get(user, self.default_gpus)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Knobs of the placement policy.

    Args:
        half_life_seconds: past usage (dominant-share-seconds) counts half as much after this long.
        quotas: per-user concurrent-GPU limits.
        starvation_after_seconds: a run queued this long goes ahead of fair-share order
            (oldest first); None turns aging off.
        unknown_duration_seconds: how long a run without `max_minutes` is assumed to hold
            its resources when charging it to fair share.
    """

    half_life_seconds: float = 7 * DAY_SECONDS
    quotas: Quotas = field(default_factory=Quotas)
    starvation_after_seconds: float | None = DAY_SECONDS
    unknown_duration_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.half_life_seconds <= 0:
            raise ValueError(f"half_life_seconds must be positive, got {self.half_life_seconds}")
        if self.starvation_after_seconds is not None and self.starvation_after_seconds < 0:
            raise ValueError(f"starvation_after_seconds must be >= 0, got {self.starvation_after_seconds}")
        if self.unknown_duration_seconds < 0:
            raise ValueError(f"unknown_duration_seconds must be >= 0, got {self.unknown_duration_seconds}")


@dataclass(frozen=True, slots=True)
class Assignment:
    """Start `run_id` on `worker` with exactly these GPUs (all of them, on this one worker)."""

    run_id: int
    worker: str
    gpu_indices: tuple[int, ...]
    cpu_slots: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """The blocked run that backfill must not delay: it gets `worker` at `start_at`.

    `start_at` is None when running jobs there have no time limit: the worker then drains.
    """

    run_id: int
    worker: str
    start_at: float | None
    gpus: int
    cpu_slots: int
    memory_mb: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of one pass: runs to start now, and why every other run waits."""

    assignments: tuple[Assignment, ...]
    pending_reasons: Mapping[int, str]
    reservation: Reservation | None = None
