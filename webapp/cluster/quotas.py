"""Quotas an admin sets on users and teams: the writes (admins only) and the reads the pages show.

Limits are GPUs, CPU slots, memory (GB) and runs held at once, and GPU-hours used in the last
7 days; an empty limit is no limit. Only the scheduler enforces them (`scheduler.quotas`):
a run past one waits with the quota as its pending reason, a submit is never refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from webapp.accounts.models import Team
from webapp.cluster.models import Quota
from webapp.experiments.models import Run, RunState, run_cpus, run_memory_gb

USER, TEAM = "user", "team"
FIELDS = ("gpus", "cpus", "memory_gb", "runs", "gpu_hours_per_week")
WHOLE = frozenset({"gpus", "cpus", "runs"})
MAXIMUM = {"gpus": 100_000, "cpus": 10_000_000, "runs": 10_000_000, "memory_gb": 1e9, "gpu_hours_per_week": 1e9}
HOLDING = (RunState.SCHEDULED, RunState.RUNNING)
WEEK = timedelta(days=7)


def require_admin(actor: AbstractBaseUser | AnonymousUser) -> None:
    """Quotas are an installation's admins' (superusers') to set and to read in full."""
    if not getattr(actor, "is_superuser", False):
        raise PermissionDenied("Only an admin may see or change quotas")


def quota_owner(kind: str, name: str) -> Any:
    """The user or team a quota is for; 404 when there is none of that name."""
    if kind == USER:
        user = get_user_model().objects.filter(username__iexact=name.strip()).first()
        if user is None:
            raise Http404(f"No user named {name!r}")
        return user
    if kind == TEAM:
        team = Team.objects.filter(slug__iexact=name.strip()).first()
        if team is None:
            raise Http404(f"No team named {name!r}")
        return team
    raise Http404(f"Quotas are for a user or a team, not {kind!r}")


def clean_limits(limits: dict[str, Any]) -> dict[str, int | float | None]:
    """Each limit None or a number in range (whole for GPUs, CPUs and runs); ValidationError names the field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, int | float | None] = {}
    for field, value in limits.items():
        if field not in FIELDS:
            errors[field] = ["unknown limit; the limits are " + ", ".join(FIELDS)]
            continue
        if value is None:
            cleaned[field] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[field] = ["must be a number, or null for no limit"]
        elif field in WHOLE and (isinstance(value, float) and not value.is_integer()):
            errors[field] = ["must be a whole number"]
        elif not math.isfinite(value) or not 0 <= value <= MAXIMUM[field]:
            errors[field] = [f"must be at least 0 and at most {MAXIMUM[field]:g}"]
        else:
            cleaned[field] = int(value) if field in WHOLE else float(value)
    if errors:
        raise ValidationError(errors)
    return cleaned


def quota_set(*, actor: AbstractBaseUser, kind: str, name: str, limits: dict[str, Any], replace: bool = False) -> Quota:
    """Set a user's or team's limits: only those given (None clears one), or all of them with `replace`.

    Admins only (PermissionDenied); bad values raise ValidationError and change nothing.
    """
    require_admin(actor)
    owner = quota_owner(kind, name)
    cleaned = clean_limits(limits)
    values = dict.fromkeys(FIELDS) if replace else {}
    values.update(cleaned)
    with transaction.atomic():
        quota, _ = Quota.objects.select_for_update().get_or_create(**{kind: owner})
        for field, value in values.items():
            setattr(quota, field, value)
        quota.updated_by = actor  # type: ignore[assignment]
        quota.save()
    return quota


def quota_clear(*, actor: AbstractBaseUser, kind: str, name: str) -> bool:
    """Remove every limit of a user or team; False when they had none."""
    require_admin(actor)
    owner = quota_owner(kind, name)
    deleted, _ = Quota.objects.filter(**{kind: owner}).delete()
    return bool(deleted)


def quotas_all() -> list[Quota]:
    """Every quota with its user or team, in one query: users first, then teams, by name."""
    quotas = list(Quota.objects.select_related("user", "team"))
    return sorted(quotas, key=lambda q: (q.user_id is None, (q.user.username if q.user else q.team.slug).lower()))  # type: ignore[union-attr]


def quota_as_dict(quota: Quota) -> dict[str, Any]:
    kind = USER if quota.user_id else TEAM
    name = quota.user.get_username() if quota.user else quota.team.slug  # type: ignore[union-attr]
    return {"kind": kind, "name": name, **{field: getattr(quota, field) for field in FIELDS},
            "updated_at": quota.updated_at}


@dataclass(frozen=True)
class Holding:
    """What one user or team holds now (scheduled and running runs) and used in the last 7 days."""

    gpus: int = 0
    cpus: int = 0
    memory_gb: float = 0.0
    runs: int = 0
    gpu_hours_week: float = 0.0


@dataclass(frozen=True)
class QuotaRow:
    """One limit next to what is in use: for the project and cluster pages."""

    label: str
    in_use: str
    limit: str
    full: bool


def holdings(*, user_id: int | None = None, team_id: int | None = None) -> Holding:
    """Current holdings of a user (all their runs) or a team (runs in its projects), in two queries."""
    where = Q(owner_id=user_id) if user_id is not None else Q(project__team_id=team_id, project__owner_user__isnull=True)
    rows = Run.objects.filter(where, state__in=HOLDING).exclude(kind="external").values_list(
        "gpus", "memory_gb", "spec__resources__cpus", "nodes")
    gpus = cpus = runs = 0
    memory = 0.0
    for run_gpus, memory_gb, spec_cpus, nodes in rows:  # gpus, CPUs and memory are per node
        gpus += run_gpus * nodes
        cpus += run_cpus(spec_cpus) * nodes
        memory += run_memory_gb(memory_gb) * nodes
        runs += 1
    return Holding(gpus, cpus, memory, runs, _gpu_hours_week(where))


def _gpu_hours_week(where: Q) -> float:
    now = timezone.now()
    since = now - WEEK
    total = 0.0
    rows = Run.objects.filter(where, gpus__gt=0, started_at__isnull=False).filter(
        Q(finished_at__isnull=True) | Q(finished_at__gte=since)).exclude(kind="external").values_list(
        "gpus", "started_at", "finished_at", "nodes")
    for gpus, started, finished, nodes in rows:
        if started is not None:
            total += gpus * nodes * max(0.0, ((finished or now) - max(started, since)).total_seconds())
    return total / 3600.0


def quota_rows(quota: Quota | None, holding: Holding) -> list[QuotaRow]:
    """The limits that are set, each with its use: "GPUs 3 of 4"."""
    if quota is None:
        return []
    rows = []
    for field, label, used in (
        ("gpus", "GPUs", holding.gpus), ("cpus", "CPUs", holding.cpus), ("memory_gb", "Memory (GB)", holding.memory_gb),
        ("runs", "Runs at once", holding.runs), ("gpu_hours_per_week", "GPU-hours, last 7 days", holding.gpu_hours_week),
    ):
        limit = getattr(quota, field)
        if limit is not None:
            rows.append(QuotaRow(label, f"{used:g}" if isinstance(used, int) else f"{used:.1f}", f"{limit:g}",
                                 used >= limit))
    return rows


def quota_of(*, user_id: int | None = None, team_id: int | None = None) -> Quota | None:
    """The quota of one user or one team, or None when an admin set none."""
    if user_id is not None:
        return Quota.objects.filter(user_id=user_id).first()
    return Quota.objects.filter(team_id=team_id).first() if team_id is not None else None


@dataclass(frozen=True)
class QuotaPanel:
    """A quota as the project page shows it to one user: whose it is, and each limit next to its use."""

    owner: str  # "Your quota", "Team ml's quota"
    rows: list[QuotaRow]


def quota_panels(user: AbstractBaseUser, project: Any) -> list[QuotaPanel]:
    """The signed-in user's own quota and, on a team's project, the team's: each with what is in use now.

    One query when no quota is set; a few more per quota that is.
    """
    quotas = list(Quota.objects.filter(Q(user_id=user.pk) | Q(team_id=project.team_id) if project.team_owned
                                       else Q(user_id=user.pk)))
    panels = []
    for quota in sorted(quotas, key=lambda q: q.user_id is None):
        if quota.user_id is not None:
            rows = quota_rows(quota, holdings(user_id=user.pk))
            panels.append(QuotaPanel("Your quota", rows))
        else:
            rows = quota_rows(quota, holdings(team_id=project.team_id))
            panels.append(QuotaPanel(f"Team {project.team.slug}'s quota", rows))
    return [panel for panel in panels if panel.rows]
