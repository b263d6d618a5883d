"""Quotas during one pass: what each user and team holds, and whether a run still fits under their limits.

A run counts against its user and, in a team's project, against that team. It may start only
when, for both, what they hold plus what it asks stays within every limit: GPUs, CPU slots,
memory and runs at once, and (for runs that ask for GPUs) GPU-hours used in the last 7 days.
Quotas are enforced here only: submits are never refused for them. Pure: no ORM, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from scheduler import pending_reasons
from scheduler.policy_types import UNLIMITED, Limits, QueuedRun, Quotas, RunningRun

HOUR = 3600.0


class _Held:
    """What one user or team holds right now (scheduled and running runs)."""

    __slots__ = ("cpu_slots", "gpus", "memory_mb", "runs")

    def __init__(self) -> None:
        self.gpus = self.cpu_slots = self.memory_mb = self.runs = 0

    def add(self, gpus: int, cpu_slots: int, memory_mb: int, runs: int) -> None:
        self.gpus += gpus
        self.cpu_slots += cpu_slots
        self.memory_mb += memory_mb
        self.runs += runs


class QuotaLedger:
    """Holdings per user and team for one pass, checked against `quotas`.

    Args:
        quotas: the limits.
        week_gpu_seconds_by_user / _by_team: GPU-seconds used in the last 7 days, running jobs included.
    """

    def __init__(
        self,
        quotas: Quotas,
        week_gpu_seconds_by_user: Mapping[str, float] | None = None,
        week_gpu_seconds_by_team: Mapping[str, float] | None = None,
    ):
        self.quotas = quotas
        self.off = quotas.unlimited
        self._users: dict[str, _Held] = {}
        self._teams: dict[str, _Held] = {}
        self._week_users = week_gpu_seconds_by_user or {}
        self._week_teams = week_gpu_seconds_by_team or {}
        self._user_limits: dict[str, Limits] = {}
        self._team_limits: dict[str, Limits] = {}
        self._seen_runs: set[int] = set()

    def hold_running(self, job: RunningRun) -> None:
        """Count a job on a worker; the nodes of a multi-node run (one job per worker) count as one run."""
        first_node = job.run_id not in self._seen_runs
        self._seen_runs.add(job.run_id)
        self._hold(job.user, job.team, job.gpus, job.cpu_slots, job.memory_mb, runs=int(first_node))

    def hold(self, run: QueuedRun) -> None:
        """Count a run the pass just started."""
        self._hold(run.user, run.team, run.gpus, run.cpu_slots, run.memory_mb)

    def blocked(self, run: QueuedRun) -> str | None:
        """Why `run` must wait for its user's or team's quota, or None if both have room for it."""
        if self.off:
            return None
        limits = self._user_limits.get(run.user)
        if limits is None:
            limits = self._user_limits[run.user] = self.quotas.for_user(run.user)
        if limits is not UNLIMITED:
            reason = _check(run, limits, self._users.get(run.user), self._week_users, run.user, pending_reasons.YOUR_QUOTA)
            if reason is not None:
                return reason
        team = run.team
        if team is None:
            return None
        limits = self._team_limits.get(team)
        if limits is None:
            limits = self._team_limits[team] = self.quotas.for_team(team)
        if limits is UNLIMITED:
            return None
        return _check(run, limits, self._teams.get(team), self._week_teams, team, pending_reasons.team_quota(team))

    def _hold(self, user: str, team: str | None, gpus: int, cpu_slots: int, memory_mb: int, runs: int = 1) -> None:
        held = self._users.get(user)
        if held is None:
            held = self._users[user] = _Held()
        held.add(gpus, cpu_slots, memory_mb, runs)
        if team is not None:
            held = self._teams.get(team)
            if held is None:
                held = self._teams[team] = _Held()
            held.add(gpus, cpu_slots, memory_mb, runs)


def over_quota(run: QueuedRun, quotas: Quotas) -> str | None:
    """Why `run` could never start under its user's or team's limits (it asks for more than they allow)."""
    reason = _never(run, quotas.for_user(run.user), pending_reasons.YOUR_QUOTA)
    if reason is None and run.team is not None:
        reason = _never(run, quotas.for_team(run.team), pending_reasons.team_quota(run.team))
    return reason


def _never(run: QueuedRun, limits: Limits, owner: str) -> str | None:
    if limits.gpus is not None and run.gpus > limits.gpus:
        return pending_reasons.over_quota(owner, run.gpus, limits.gpus, "GPU")
    if limits.cpu_slots is not None and run.cpu_slots > limits.cpu_slots:
        return pending_reasons.over_quota(owner, run.cpu_slots, limits.cpu_slots, "CPU")
    if limits.memory_mb is not None and run.memory_mb > limits.memory_mb:
        return pending_reasons.over_memory_quota(owner, run.memory_mb, limits.memory_mb)
    if limits.runs is not None and limits.runs < 1:
        return pending_reasons.no_runs_allowed(owner)
    if limits.gpu_hours_per_week is not None and limits.gpu_hours_per_week <= 0 and run.gpus > 0:
        return pending_reasons.no_gpu_hours_allowed(owner)
    return None


def _check(run: QueuedRun, limits: Limits, held: _Held | None, week: Mapping[str, float], name: str,
           owner: str) -> str | None:
    """The first limit `run` would break given what is `held`, as the reason it waits.

    A request past a limit itself comes first (it waits until an admin raises the limit).
    """
    never = _never(run, limits, owner)
    if never is not None:
        return never
    if held is not None:  # nothing held: nothing can be full
        if limits.runs is not None and held.runs >= limits.runs:
            return pending_reasons.quota_full(owner, held.runs, limits.runs, "run", "running")
        if run.gpus and limits.gpus is not None and held.gpus + run.gpus > limits.gpus:
            return pending_reasons.quota_full(owner, held.gpus, limits.gpus, "GPU")
        if limits.cpu_slots is not None and held.cpu_slots + run.cpu_slots > limits.cpu_slots:
            return pending_reasons.quota_full(owner, held.cpu_slots, limits.cpu_slots, "CPU")
        if limits.memory_mb is not None and held.memory_mb + run.memory_mb > limits.memory_mb:
            return pending_reasons.memory_quota_full(owner, held.memory_mb, limits.memory_mb)
    if run.gpus and limits.gpu_hours_per_week is not None:
        used = week.get(name, 0.0)
        if used >= limits.gpu_hours_per_week * HOUR:
            return pending_reasons.gpu_hours_used(owner, used / HOUR, limits.gpu_hours_per_week)
    return None
