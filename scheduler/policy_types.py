"""What one scheduling pass reads and returns: frozen dataclasses, no Django, no I/O.

All times are seconds since the epoch (floats); the loop converts its datetimes with
`.timestamp()`. A run needs all of its `gpus`, `cpu_slots` and `memory_mb` on ONE worker,
or, for a multi-node run (`nodes` > 1), an equal share of them on each of `nodes` workers.
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
    which may only go to workers that `runs_code`. `expected_minutes` is the caller's
    estimate of its run time (e.g. the median of earlier runs of the same recipe), None
    when there is none; backfill and reservations use it, bounded by `max_minutes`.
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
    expected_minutes: float | None = None
    nodes: int = 1

    # NOTE: `gpus`, `cpu_slots` and `memory_mb` are the whole run's (a gang's: all its nodes together), so
    # fair share and quotas count a gang whole; placement puts `node_request` on each of `nodes` workers.
    @property
    def node_request(self) -> tuple[int, int, int, bool]:
        """What each node needs on its worker: (gpus, cpu_slots, memory_mb, needs_isolation), a `Request`."""
        nodes = max(1, self.nodes)
        return (self.gpus // nodes, self.cpu_slots // nodes, self.memory_mb // nodes, self.needs_isolation)

    @property
    def max_seconds(self) -> float | None:
        return None if self.max_minutes is None else self.max_minutes * 60.0

    @property
    def expected_seconds(self) -> float | None:
        """How long it is expected to run: its estimate from history, else its `max_minutes`, never more."""
        if self.expected_minutes is None:
            return self.max_seconds
        expected = self.expected_minutes * 60.0
        return expected if self.max_minutes is None else min(expected, self.max_minutes * 60.0)


@dataclass(frozen=True, slots=True)
class RunningRun:
    """A run holding resources on a worker.

    `expected_end`: when it is expected to end (its start plus its estimated run time, at most
    its `max_minutes`); None when it has no time limit.
    """

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
class Limits:
    """What one user (or one team) may hold at once; None means unlimited.

    `gpus`, `cpu_slots`, `memory_mb` and `runs` count scheduled and running runs together;
    `gpu_hours_per_week` counts the GPU-hours its runs used in the last 7 days (running ones
    up to now): past it, runs that ask for GPUs wait until old usage leaves the window.
    """

    gpus: int | None = None
    cpu_slots: int | None = None
    memory_mb: int | None = None
    runs: int | None = None
    gpu_hours_per_week: float | None = None

    @property
    def unlimited(self) -> bool:
        return (self.gpus is None and self.cpu_slots is None and self.memory_mb is None and self.runs is None
                and self.gpu_hours_per_week is None)


UNLIMITED = Limits()


@dataclass(frozen=True, slots=True)
class Quotas:
    """The limits an admin set: per user (`default` for users without their own) and per team.

    A run counts against its user's limits and, in a team's project, against that team's too;
    it starts only when both have room (`scheduler.quotas`).
    """

    default: Limits = UNLIMITED
    users: Mapping[str, Limits] = field(default_factory=dict)
    teams: Mapping[str, Limits] = field(default_factory=dict)

    def for_user(self, user: str) -> Limits:
        return self.users.get(user, self.default)

    def for_team(self, team: str | None) -> Limits:
        return UNLIMITED if team is None else self.teams.get(team, UNLIMITED)

    @property
    def unlimited(self) -> bool:
        return self.default.unlimited and not self.users and not self.teams

    @property
    def counts_gpu_hours(self) -> bool:
        """Whether any limit is on GPU-hours per week (then the pass needs the week's GPU-seconds)."""
        return any(limits.gpu_hours_per_week is not None
                   for limits in (self.default, *self.users.values(), *self.teams.values()))


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Knobs of the placement policy.

    Args:
        half_life_seconds: past usage (dominant-share-seconds) counts half as much after this long.
        quotas: per-user and per-team limits (`Quotas`).
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
    """Start `run_id` on `worker` with exactly these GPUs (all of them, on this one worker).

    A multi-node run gets one assignment per node, `node_rank` 0..nodes-1, all in the same plan.
    """

    run_id: int
    worker: str
    gpu_indices: tuple[int, ...]
    cpu_slots: int
    node_rank: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    """The blocked run that backfill must not delay: it gets `worker` at `start_at`.

    `start_at` is None when running jobs there have no time limit: the worker then drains.
    A multi-node run reserves all its `workers` (`worker` is the first); `gpus`, `cpu_slots`
    and `memory_mb` are then what it needs on each.
    """

    run_id: int
    worker: str
    start_at: float | None
    gpus: int
    cpu_slots: int
    memory_mb: int = 0
    workers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of one pass: runs to start now, and why every other run waits."""

    assignments: tuple[Assignment, ...]
    pending_reasons: Mapping[int, str]
    reservation: Reservation | None = None
