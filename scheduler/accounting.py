"""What the scheduler reads about users and history, kept cheap per tick: quotas, usage, run-time estimates.

- `policy_quotas`: the admin's `Quota` rows as the policy's `Quotas` (one query).
- `UsageLedger`: decayed dominant-share-seconds (a multi-node run's `gpus`, CPUs and memory are per
  node: it is charged for all its nodes). Finished runs are folded in once and kept between
  ticks (each tick reads only the runs that finished since, plus the running ones); the whole
  history (`USAGE_HISTORY_HALF_LIVES` half-lives) is read again every `REBUILD_SECONDS` or when
  the cluster's capacity, the denominator of every share, changes.
- `DurationHistory`: a run's expected run time, the median of the latest succeeded runs of the
  same recipe (model/dataset) or the same code (sha256) in its project, read at most every
  `REFRESH_SECONDS` in one bounded query and looked up from memory for each queued run.
ORM in, policy dataclasses out: the policy itself stays pure.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from scheduler.fairshare import UsageRecord, UsageTotals, usage_totals
from scheduler.pending_reasons import count
from scheduler.policy_types import ClusterCapacity, Limits, PolicyConfig, Quotas
from webapp.cluster.models import Quota
from webapp.experiments.models import Run, RunState, run_cpus, run_memory_gb

CPUS = "spec__resources__cpus"
HOLDING = (RunState.SCHEDULED, RunState.RUNNING)
USAGE_HISTORY_HALF_LIVES = 5  # older finished runs weigh < 3% and are not read
WEEK_SECONDS = 7 * 24 * 3600.0


def policy_quotas() -> Quotas:
    """Every quota an admin set, by username and team slug."""
    users: dict[str, Limits] = {}
    teams: dict[str, Limits] = {}
    rows = Quota.objects.values_list("user__username", "team__slug", "gpus", "cpus", "memory_gb", "runs",
                                     "gpu_hours_per_week")
    for username, slug, gpus, cpus, memory_gb, runs, gpu_hours in rows:
        limits = Limits(gpus, cpus, None if memory_gb is None else round(memory_gb * 1024), runs, gpu_hours)
        if limits.unlimited:
            continue
        if username is not None:
            users[username] = limits
        elif slug is not None:
            teams[slug] = limits
    return Quotas(users=users, teams=teams)


def _memory_mb(memory_gb: float) -> int:
    return round(run_memory_gb(memory_gb) * 1024)


def _owner_team(team: str | None, owner_user: int | None) -> str | None:
    """The team a run counts for: its project's, when a team owns the project."""
    return team if owner_user is None else None


class UsageLedger:
    """Usage per user and team for each tick, without reading weeks of runs every tick."""

    REBUILD_SECONDS = 600.0
    OVERLAP_SECONDS = 120.0  # a run's finished_at is stamped just before its commit: read a little back

    def __init__(self) -> None:
        self._base: UsageTotals | None = None
        self._key: tuple[ClusterCapacity, float] | None = None
        self._built_at = 0.0
        self._seen_until: datetime | None = None
        self._recent: dict[int, datetime] = {}  # finished runs inside the overlap, already counted
        self.rows_read = 0  # finished-run rows the last call read (for tests and benchmarks)

    def totals(self, config: PolicyConfig, now: float, capacity: ClusterCapacity, *,
               week_gpu_seconds: bool = False) -> UsageTotals:
        """Decayed share-seconds of finished and running runs as of `now`; with `week_gpu_seconds`, the
        GPU-seconds of the last 7 days too (read only when a GPU-hours quota needs them)."""
        key = (capacity, config.half_life_seconds)
        now_dt = datetime.fromtimestamp(now, tz=UTC)
        if self._base is None or key != self._key or time.monotonic() - self._built_at > self.REBUILD_SECONDS:
            self._rebuild(config, now, now_dt, capacity)
            self._key = key
        else:
            self._catch_up(config, now, capacity)
        running = Run.objects.filter(state__in=HOLDING, started_at__isnull=False).exclude(kind="external")
        records = [
            UsageRecord(user, _owner_team(team, owner_user),
                        capacity.dominant_share(gpus * nodes, run_cpus(cpus) * nodes, _memory_mb(memory_gb) * nodes)
                        * max(0.0, now - started.timestamp()), None)
            for user, team, owner_user, gpus, memory_gb, started, cpus, nodes in running.values_list(
                "owner__username", "project__team__slug", "project__owner_user_id", "gpus", "memory_gb",
                "started_at", CPUS, "nodes")
        ]
        totals = usage_totals(records, now=now, half_life_seconds=config.half_life_seconds, base=self._base)
        if not week_gpu_seconds:
            return totals
        by_user, by_team = week_gpu_usage(now, config.quotas)
        return UsageTotals(totals.as_of, totals.by_user, totals.by_team, by_user, by_team)

    def _finished(self, since: datetime) -> Iterable[tuple]:
        return Run.objects.filter(started_at__isnull=False, finished_at__gte=since).exclude(kind="external").values_list(
            "id", "owner__username", "project__team__slug", "project__owner_user_id", "gpus", "memory_gb",
            "started_at", "finished_at", CPUS, "nodes")

    def _rebuild(self, config: PolicyConfig, now: float, now_dt: datetime, capacity: ClusterCapacity) -> None:
        horizon = now_dt - timedelta(seconds=config.half_life_seconds * USAGE_HISTORY_HALF_LIVES)
        self._base = UsageTotals(now)
        self._seen_until = horizon
        self._recent = {}
        self._fold(self._finished(horizon), config, now, capacity)
        self._built_at = time.monotonic()

    def _catch_up(self, config: PolicyConfig, now: float, capacity: ClusterCapacity) -> None:
        assert self._seen_until is not None
        self._fold(self._finished(self._seen_until - timedelta(seconds=self.OVERLAP_SECONDS)), config, now, capacity)

    def _fold(self, rows: Iterable[tuple], config: PolicyConfig, now: float, capacity: ClusterCapacity) -> None:
        records = []
        read = 0
        for run_id, user, team, owner_user, gpus, memory_gb, started, finished, cpus, nodes in rows:
            read += 1
            if self._recent.get(run_id) == finished:
                continue  # counted at an earlier tick
            seconds = max(0.0, (finished - started).total_seconds())
            share = capacity.dominant_share(gpus * nodes, run_cpus(cpus) * nodes, _memory_mb(memory_gb) * nodes)
            records.append(UsageRecord(user, _owner_team(team, owner_user), share * seconds, finished.timestamp()))
            self._recent[run_id] = finished
            if self._seen_until is None or finished > self._seen_until:
                self._seen_until = finished
        self.rows_read = read
        if self._seen_until is not None:
            cutoff = self._seen_until - timedelta(seconds=self.OVERLAP_SECONDS)
            self._recent = {run_id: at for run_id, at in self._recent.items() if at >= cutoff}
        self._base = usage_totals(records, now=now, half_life_seconds=config.half_life_seconds, base=self._base)


def week_gpu_usage(now: float, quotas: Quotas | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """GPU-seconds used in the 7 days before `now` per user and per team (running runs up to now).

    With `quotas`, only the users and teams whose GPU-hours are limited are read.
    """
    since = datetime.fromtimestamp(now - WEEK_SECONDS, tz=UTC)
    runs = Run.objects.filter(gpus__gt=0, started_at__isnull=False).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=since)).exclude(kind="external")
    if quotas is not None and quotas.default.gpu_hours_per_week is None:
        users = [name for name, limits in quotas.users.items() if limits.gpu_hours_per_week is not None]
        teams = [name for name, limits in quotas.teams.items() if limits.gpu_hours_per_week is not None]
        runs = runs.filter(Q(owner__username__in=users) | Q(project__team__slug__in=teams,
                                                             project__owner_user__isnull=True))
    rows = runs.values_list(
        "owner__username", "project__team__slug", "project__owner_user_id", "gpus", "started_at", "finished_at",
        "nodes")
    by_user: dict[str, float] = {}
    by_team: dict[str, float] = {}
    for user, slug, owner_user, gpus, started, finished, nodes in rows:
        if started is None:
            continue
        end = now if finished is None else min(now, finished.timestamp())
        used = gpus * nodes * max(0.0, end - max(started.timestamp(), now - WEEK_SECONDS))
        by_user[user] = by_user.get(user, 0.0) + used
        team = _owner_team(slug, owner_user)
        if team is not None:
            by_team[team] = by_team.get(team, 0.0) + used
    return by_user, by_team


# Run-time estimates ----------------------------------------------------------------------------------

Subject = tuple[int, str, str]  # (project id, "recipe" | "code", "mlp/digits" | code sha256)


def run_subject(project_id: int, kind: str, code_sha256: str, model: object, dataset: object) -> Subject | None:
    """What makes two runs of a project alike enough to predict one from the other; None for neither."""
    if kind == "recipe" and isinstance(model, str):
        return (project_id, "recipe", f"{model}/{dataset if isinstance(dataset, str) else 'digits'}")
    if kind == "code" and code_sha256:
        return (project_id, "code", code_sha256)
    return None


@dataclass(frozen=True)
class Estimate:
    """A run's expected duration and where it comes from."""

    minutes: float
    runs: int  # how many earlier runs the median is of
    subject: str  # "recipe mlp/digits", "code 3f2a9c1"

    @property
    def basis(self) -> str:
        return f"median of {count(self.runs, 'earlier run')} of {self.subject}"

    def describe(self, max_minutes: float | None) -> str:
        """ "about 12 min, median of 8 earlier runs of recipe mlp/digits" (bounded by `max_minutes`)."""
        minutes = self.minutes if max_minutes is None else min(self.minutes, max_minutes)
        capped = " (capped at its max_minutes)" if max_minutes is not None and self.minutes > max_minutes else ""
        return f"about {_minutes(minutes)}, {self.basis}{capped}"


def _minutes(minutes: float) -> str:
    if minutes < 1:
        return f"{max(1, round(minutes * 60))} s"
    if minutes < 120:
        return f"{round(minutes)} min"
    return f"{minutes / 60:.1f} h".replace(".0 h", " h")


def no_estimate(max_minutes: float | None) -> str:
    return "no earlier runs to go by" if max_minutes is None else (
        f"up to {_minutes(max_minutes)} (its max_minutes; no earlier runs to go by)")


class DurationHistory:
    """Medians of succeeded runs' durations per project and recipe or code, refreshed every `REFRESH_SECONDS`."""

    REFRESH_SECONDS = 30.0
    PER_SUBJECT = 50  # the latest this many runs of each recipe or code
    MAX_ROWS = 20_000  # one refresh reads at most this many runs
    LOOKBACK = timedelta(days=90)

    def __init__(self) -> None:
        self._estimates: dict[Subject, Estimate] = {}
        self._projects: frozenset[int] = frozenset()
        self._read_at = -float("inf")
        self.refreshes = 0

    def estimates(self, subjects: Iterable[Subject]) -> dict[Subject, Estimate]:
        """The estimate of each subject that has succeeded runs; reads the database at most once per refresh."""
        wanted = set(subjects)
        projects = frozenset(subject[0] for subject in wanted)
        if time.monotonic() - self._read_at > self.REFRESH_SECONDS:
            self._refresh(projects)
        elif not projects <= self._projects:  # a project not read yet: read it with the others
            self._refresh(projects | self._projects)
        return {subject: self._estimates[subject] for subject in wanted if subject in self._estimates}

    def _refresh(self, projects: frozenset[int]) -> None:
        self.refreshes += 1
        self._projects = projects
        self._read_at = time.monotonic()
        durations: dict[Subject, list[float]] = {}
        if projects:
            since = datetime.now(tz=UTC) - self.LOOKBACK
            rows = Run.objects.filter(project_id__in=projects, state=RunState.SUCCEEDED, started_at__isnull=False,
                                      finished_at__gte=since).order_by("-finished_at").values_list(
                "project_id", "kind", "code_sha256", "spec__recipe__model", "spec__recipe__dataset", "started_at",
                "finished_at")[: self.MAX_ROWS]
            for project_id, kind, sha, model, dataset, started, finished in rows:
                subject = run_subject(project_id, kind, sha, model, dataset)
                if subject is None or started is None or finished is None:
                    continue
                seen = durations.setdefault(subject, [])
                if len(seen) < self.PER_SUBJECT:
                    seen.append(max(0.0, (finished - started).total_seconds()) / 60.0)
        self._estimates = {
            subject: Estimate(statistics.median(minutes), len(minutes), _subject_label(subject))
            for subject, minutes in durations.items()
        }


def _subject_label(subject: Subject) -> str:
    _, kind, what = subject
    return f"recipe {what}" if kind == "recipe" else f"code {what[:7]}"


SUBJECT_FIELDS = ("project_id", "kind", "code_sha256", "spec__recipe__model", "spec__recipe__dataset")


def estimates_for_rows(durations: DurationHistory | None, rows: list[tuple]) -> list[Estimate | None]:
    """Each row's estimate, for rows ending in the `SUBJECT_FIELDS` values; one history read for all of them."""
    if durations is None:
        return [None] * len(rows)
    subjects = [run_subject(*row[-len(SUBJECT_FIELDS):]) for row in rows]
    found = durations.estimates(subject for subject in subjects if subject is not None)
    return [None if subject is None else found.get(subject) for subject in subjects]


def with_admin_quotas(config: PolicyConfig, admin: Quotas) -> PolicyConfig:
    """`config` with the admin's quotas laid over its own (a user's or team's row replaces theirs)."""
    if admin.unlimited:
        return config
    base = config.quotas
    quotas = Quotas(base.default, {**base.users, **admin.users}, {**base.teams, **admin.teams})
    return replace(config, quotas=quotas)
