"""Reads for runs."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import F, QuerySet
from django.http import Http404

from webapp.experiments.models import Artifact, MetricSummary, Run, RunTag
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
    _require_run_access(user, run, needed, link_token=link_token)
    return run


def project_runs(project: Project) -> QuerySet[Run]:
    return project.runs.select_related("owner").prefetch_related("tags")


def log_tail(run: Run, *, offset: int = 0, limit: int = 1000) -> list[dict]:
    """Log lines with seq >= offset, oldest first; the client continues from the last seq + 1."""
    rows = run.log_lines.filter(seq__gte=offset).order_by("seq").values("seq", "stream", "text")
    return [dict(row) for row in rows[: max(1, min(limit, 10_000))]]


def metric_keys(run: Run) -> list[str]:
    return list(run.summaries.order_by("key").values_list("key", flat=True))


def metric_points(run: Run, key: str, *, since_step: int | None = None) -> list[tuple[int, float | None, float]]:
    """(step, value, wall_time) for one key, by step (value None for NaN); `since_step`: only newer points."""
    points = run.metrics.filter(key=key)
    if since_step is not None:
        points = points.filter(step__gt=since_step)
    return list(points.order_by("step").values_list("step", "value", "wall_time"))


def runs_for_listing(user: User | AnonymousUser, *, project: Project | None = None) -> QuerySet[Run]:
    """Runs of `project` (access already checked) or every run `user` may see; filter, order, then `run_rows`."""
    return Run.objects.filter(project=project) if project is not None else runs_visible_to(user)


RUN_ROW_FIELDS = (
    "id", "project_id", "number", "name", "kind", "state", "params", "gpus", "priority", "attempt",
    "pending_reason", "failure_reason", "exit_code", "progress", "sweep_id", "cloned_from_id",
    "created_at", "scheduled_at", "started_at", "finished_at",
)


def run_rows(runs: QuerySet[Run], *, offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    """One page of `runs` as plain dicts with owner, project path, tags and metric summaries.

    Three queries whatever the page size, and no model instances: this is the API's hot path.
    """
    rows = list(
        runs.values(
            *RUN_ROW_FIELDS, owner_name=F("owner__username"), project_slug=F("project__slug"),
            project_user=F("project__owner_user__username"), project_team=F("project__team__slug"),
        )[offset : offset + limit]
    )
    ids = [row["id"] for row in rows]
    tags: dict[int, list[str]] = {run_id: [] for run_id in ids}
    summaries: dict[int, list[dict[str, Any]]] = {run_id: [] for run_id in ids}
    if ids:
        for run_id, name in RunTag.objects.filter(run_id__in=ids).order_by("name").values_list("run_id", "name"):
            tags[run_id].append(name)
        for summary in MetricSummary.objects.filter(run_id__in=ids).order_by("key").values(
            "run_id", "key", "last", "last_step", "min", "max", "count"
        ):
            summaries[summary["run_id"]].append(dict(summary))
    for row in rows:
        row["tags"], row["summaries"] = tags[row["id"]], summaries[row["id"]]
    return rows


def run_detail_for(user: User | AnonymousUser, run_id: int, needed: Access = Access.VIEW) -> Run:
    """Like `run_for`, with everything a run's detail shows joined or prefetched."""
    run = next(iter(runs_detailed([run_id])), None)
    if run is None:
        raise Http404("No such run")
    _require_run_access(user, run, needed)
    return run


def runs_detailed(run_ids: list[int]) -> list[Run]:
    """Runs by id, in number order, with project, owner, worker, tags and summaries (no permission check)."""
    return list(
        Run.objects.select_related("project__owner_user", "project__team", "owner", "worker")
        .prefetch_related("tags", "summaries")
        .filter(id__in=run_ids)
        .order_by("project_id", "number")
    )


def _require_run_access(user: User | AnonymousUser, run: Run, needed: Access, *, link_token: str | None = None) -> None:
    try:
        require_access(user, run.project, needed, link_token=link_token)
    except Http404:
        raise Http404("No such run") from None  # the same answer as for a run that does not exist


def metric_summaries(run: Run) -> list[MetricSummary]:
    return list(run.summaries.order_by("key"))


def run_artifacts(run: Run) -> list[Artifact]:
    return list(run.artifacts.order_by("kind", "name"))


def artifact_for(run: Run, artifact_id: int) -> Artifact:
    artifact = run.artifacts.filter(id=artifact_id).first()
    if artifact is None:
        raise Http404("No such artifact")
    return artifact
