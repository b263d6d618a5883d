"""Reads for runs."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from webapp.experiments.models import Run
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access
from webapp.projects.selectors import projects_visible_to


def runs_visible_to(user: User | AnonymousUser) -> QuerySet[Run]:
    return Run.objects.filter(project__in=projects_visible_to(user))


def run_for(
    user: User | AnonymousUser, run_id: int, needed: Access = Access.VIEW, *, link_token: str | None = None
) -> Run:
    """The run if `user` may act on it at `needed`; Http404 for anyone who may not see it."""
    run = Run.objects.select_related("project", "owner", "worker").filter(id=run_id).first()
    if run is None:
        raise Http404("No such run")
    require_access(user, run.project, needed, link_token=link_token)
    return run


def project_runs(project: Project) -> QuerySet[Run]:
    return project.runs.select_related("owner").prefetch_related("tags")


def log_tail(run: Run, *, offset: int = 0, limit: int = 1000) -> list[dict]:
    """Log lines with seq >= offset, oldest first; the client continues from the last seq + 1."""
    rows = run.log_lines.filter(seq__gte=offset).order_by("seq").values("seq", "stream", "text")
    return [dict(row) for row in rows[: max(1, min(limit, 10_000))]]


def metric_keys(run: Run) -> list[str]:
    return list(run.summaries.order_by("key").values_list("key", flat=True))


def metric_points(run: Run, key: str, *, since_step: int | None = None) -> list[tuple[int, float, float]]:
    """(step, value, wall_time) for one key, by step; `since_step` returns only newer points."""
    points = run.metrics.filter(key=key)
    if since_step is not None:
        points = points.filter(step__gt=since_step)
    return list(points.order_by("step").values_list("step", "value", "wall_time"))
