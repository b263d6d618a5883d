"""Fair share by decayed dominant-share-seconds: usage bookkeeping and the order runs are considered in.

A run's usage is its dominant share (Ghodsi et al., 2011: the largest fraction of the
cluster's GPUs, CPU slots or memory it holds, `ClusterCapacity.dominant_share`) times the
seconds it holds it, so CPU-only and memory-heavy runs are charged like GPU runs.
Usage decays exponentially: usage that ended `h` half-lives ago counts `0.5 ** h`.
The order is hierarchical: the team with the least usage goes next, then, inside it, the
user with the least usage, then that user's own next run (priority, then submitted_at,
then id). A user without a team is a team of one. Every run placed during a pass is
charged to its user and team at once, so one pass already alternates between users.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from scheduler.policy_types import QueuedRun

Group = tuple[str, str]  # ("team", name) or ("user", name) for a user without a team


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Dominant-share-seconds one run used; `ended_at` None means still running (counted at full weight)."""

    user: str
    team: str | None
    share_seconds: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Decayed dominant-share-seconds per user and per team, as they stood at `as_of`.

    Keep one of these between ticks and fold finished runs into it, or rebuild it from
    records with `usage_totals`; either way `plan_pass` ages it to its own `now`.
    `week_gpu_seconds_by_user`/`_by_team` are GPU-seconds used in the 7 days before `as_of`
    (not decayed), for GPU-hours-per-week quotas.
    """

    as_of: float
    by_user: Mapping[str, float] = field(default_factory=dict)
    by_team: Mapping[str, float] = field(default_factory=dict)
    week_gpu_seconds_by_user: Mapping[str, float] = field(default_factory=dict)
    week_gpu_seconds_by_team: Mapping[str, float] = field(default_factory=dict)

    def decayed_to(self, now: float, half_life_seconds: float) -> UsageTotals:
        """The same totals seen from `now` (never from the past: time does not run back)."""
        factor = decay_factor(now - self.as_of, half_life_seconds)
        week = (self.week_gpu_seconds_by_user, self.week_gpu_seconds_by_team)
        if factor == 1.0:
            return UsageTotals(max(now, self.as_of), self.by_user, self.by_team, *week)
        return UsageTotals(
            now,
            {user: used * factor for user, used in self.by_user.items()},
            {team: used * factor for team, used in self.by_team.items()},
            *week,
        )


def decay_factor(age_seconds: float, half_life_seconds: float) -> float:
    """Weight of usage `age_seconds` old; usage from the future counts fully."""
    if age_seconds <= 0:
        return 1.0
    return float(0.5 ** (age_seconds / half_life_seconds))


def usage_totals(
    records: Iterable[UsageRecord],
    *,
    now: float,
    half_life_seconds: float,
    base: UsageTotals | None = None,
) -> UsageTotals:
    """Sum `records` (decayed to `now`) on top of `base` (pre-aggregated totals, aged to `now`).

    Example:
        >>> usage_totals([UsageRecord("ada", None, 100.0, ended_at=0.0)], now=60.0, half_life_seconds=60.0).by_user
        {'ada': 50.0}
    """
    start = (base or UsageTotals(now)).decayed_to(now, half_life_seconds)
    by_user = dict(start.by_user)
    by_team = dict(start.by_team)
    for record in records:
        weight = 1.0 if record.ended_at is None else decay_factor(now - record.ended_at, half_life_seconds)
        used = record.share_seconds * weight
        by_user[record.user] = by_user.get(record.user, 0.0) + used
        if record.team is not None:
            by_team[record.team] = by_team.get(record.team, 0.0) + used
    return UsageTotals(now, by_user, by_team, start.week_gpu_seconds_by_user, start.week_gpu_seconds_by_team)


def group_of(user: str, team: str | None) -> Group:
    return ("user", user) if team is None else ("team", team)


class _UserQueue:
    """One user's runs inside one group, best first, and how far the pass has got."""

    __slots__ = ("index", "runs", "user")

    def __init__(self, user: str):
        self.user = user
        self.runs: list[QueuedRun] = []
        self.index = 0


class _GroupQueue:
    """A team (or a user without a team) and the heap of its users' queues."""

    __slots__ = ("is_team", "name", "users")

    def __init__(self, group: Group):
        self.is_team = group[0] == "team"
        self.name = group[1]
        self.users: list[tuple[float, float, int, _UserQueue]] = []


class FairShareOrder:
    """Hands out queued runs one at a time in fair-share order; `charge` reorders what is left.

    `user_usage` and `team_usage` (by team name) are the starting keys: decayed history plus
    whatever the caller adds, e.g. share-seconds committed to running jobs. They are updated
    in place by `charge`. Heap entries are (usage, head's submitted_at, head's id, queue),
    so ties fall to the earliest head run, and run ids being unique, never to the queue.
    NOTE: a user with runs in two teams is re-ranked in the other team only when next taken.
    """

    def __init__(self, runs: Sequence[QueuedRun], user_usage: dict[str, float], team_usage: dict[str, float]):
        self._user_usage = user_usage
        self._team_usage = team_usage
        queues: dict[tuple[Group, str], _UserQueue] = {}
        for run in sorted(runs, key=_within_user_order):
            key = (group_of(run.user, run.team), run.user)
            queue = queues.get(key)
            if queue is None:
                queue = queues[key] = _UserQueue(run.user)
            queue.runs.append(run)
        self._queues = list(queues.values())
        groups: dict[Group, _GroupQueue] = {}
        for (group, user), queue in queues.items():
            user_usage.setdefault(user, 0.0)
            if group[0] == "team":
                team_usage.setdefault(group[1], 0.0)
            head = queue.runs[0]
            groups.setdefault(group, _GroupQueue(group)).users.append(
                (user_usage[user], head.submitted_at, head.id, queue)
            )
        self._groups: list[tuple[float, float, int, _GroupQueue]] = []
        for group_queue in groups.values():
            heapq.heapify(group_queue.users)
            self._groups.append(self._group_entry(group_queue))
        heapq.heapify(self._groups)
        self._handed_out = False

    def next_run(self) -> QueuedRun | None:
        """The next run to consider, or None when every run has been handed out."""
        if self._handed_out:
            self._advance()
        if not self._groups:
            return None
        queue = self._groups[0][3].users[0][3]
        self._handed_out = True
        return queue.runs[queue.index]

    def charge(self, run: QueuedRun, share_seconds: float) -> None:
        """Count share-seconds promised to `run` against its user and team for the rest of the pass."""
        self._user_usage[run.user] = self._user_usage.get(run.user, 0.0) + share_seconds
        if run.team is not None:
            self._team_usage[run.team] = self._team_usage.get(run.team, 0.0) + share_seconds

    def remaining(self) -> Iterator[QueuedRun]:
        """Every run not handed out yet, in no particular order (for when nothing can start)."""
        if self._handed_out:
            self._advance()
        self._groups.clear()
        for queue in self._queues:
            yield from queue.runs[queue.index :]
            queue.index = len(queue.runs)

    def _advance(self) -> None:
        """Move past the run just handed out and re-rank its user and group with their new keys."""
        self._handed_out = False
        group = self._groups[0][3]
        users = group.users
        queue = users[0][3]
        queue.index += 1
        if queue.index < len(queue.runs):
            head = queue.runs[queue.index]
            heapq.heapreplace(users, (self._user_usage[queue.user], head.submitted_at, head.id, queue))
        else:
            heapq.heappop(users)
        if users:
            heapq.heapreplace(self._groups, self._group_entry(group))
        else:
            heapq.heappop(self._groups)

    def _group_entry(self, group: _GroupQueue) -> tuple[float, float, int, _GroupQueue]:
        _, submitted_at, run_id, _ = group.users[0]
        usage = self._team_usage[group.name] if group.is_team else self._user_usage[group.name]
        return (usage, submitted_at, run_id, group)


def _within_user_order(run: QueuedRun) -> tuple[int, float, int]:
    return (-run.priority, run.submitted_at, run.id)
