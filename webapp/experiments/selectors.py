"""Reads for runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC
from functools import cache
from typing import Any

import numpy as np
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Count, F, QuerySet, Value, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.urls import reverse

from webapp.db import fetch_fixed
from webapp.experiments import rollup
from webapp.experiments.models import Artifact, Metric, MetricRollup, MetricSummary, ReplacedMetric, Run
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access
from webapp.projects.selectors import projects_visible_to


def runs_visible_to(user: User | AnonymousUser) -> QuerySet[Run]:
    return Run.objects.filter(project__in=projects_visible_to(user))


def run_for(
    user: User | AnonymousUser, run_id: int, needed: Access = Access.VIEW, *, link_token: str | None = None,
    with_deleted: bool = False,
) -> Run:
    """The run if `user` may act on it at `needed`; Http404 for anyone who may not see it.

    `with_deleted`: a soft-deleted run too (the MLflow API's get_run and restore_run).
    """
    runs = Run.all_objects if with_deleted else Run.objects
    run = runs.select_related("project", "owner", "worker").filter(id=run_id).first()
    if run is None:
        raise Http404("No such run")
    _require_run_access(user, run, needed, link_token=link_token)
    return run


def run_by_number(user: User | AnonymousUser, project_id: int, number: int) -> Run:
    """Run `number` of the project (the number its pages show), as `run_for` answers for it."""
    run = Run.objects.select_related("project", "owner", "worker").filter(project_id=project_id, number=number).first()
    if run is None:
        raise Http404("No such run")
    _require_run_access(user, run, Access.VIEW)
    return run


def run_page_url(run: Run) -> str:
    """The run page's address: under its project, by the number the page shows."""
    return reverse("run_page", args=[run.project_id, run.number])


def run_id_for(user: User | AnonymousUser, run_id: int, needed: Access) -> int:
    """`run_for`'s check without loading the run (one prepared query for its project): for endpoints that need only its id."""
    sql, fields = _run_project_query()
    rows = fetch_fixed(sql, [run_id])
    if not rows:
        raise Http404("No such run")
    project = Project.from_db(connection.alias, fields, list(rows[0]))  # read only for the check below
    try:
        require_access(user, project, needed)
    except Http404:
        raise Http404("No such run") from None  # the same answer as for a run that does not exist
    return run_id


@cache
def _run_project_query() -> tuple[str, list[str]]:
    """The run's project as the ORM writes the query (its managers leave soft-deleted rows out), compiled once."""
    projects = Project.objects.filter(runs__id=-1, runs__deleted_at__isnull=True).order_by()[:1]  # a join skips Run.objects
    sql, params = projects.query.sql_with_params()
    if list(params) != [-1]:
        raise AssertionError(f"the run's project query takes only the run id, not {params}")
    return sql, [field.attname for field in Project._meta.concrete_fields]


def project_runs(project: Project) -> QuerySet[Run]:
    return project.runs.select_related("owner").prefetch_related("tags")


def stored_rollups(series: Iterable[tuple[int, str]]) -> dict[tuple[int, str], tuple[int, np.ndarray]]:
    """(points covered, buckets) of each (run id, key)'s stored rollup, where it has a whole one.

    One statement reads every series' chunks, so a live run's rollup is read whole (maybe newer than asked).
    """
    wanted = set(series)
    if not wanted:
        return {}
    rows: dict[tuple[int, str], list] = {name: [] for name in wanted}
    counts: dict[tuple[int, str], tuple[int, int]] = {}  # the last chunk's count
    stored = MetricRollup.objects.filter(run_id__in={run_id for run_id, _ in wanted}, key__in={key for _, key in wanted})
    for run_id, key, chunk, data, count in stored.values_list("run_id", "key", "chunk", "buckets", "count"):
        name = (run_id, key)
        if name in rows:
            rows[name].append((chunk, data))
            counts[name] = max(counts.get(name, (chunk, count)), (chunk, count))
    found = {}
    for name, (_, count) in counts.items():
        buckets = rollup.joined(rows[name], 0, count)
        if buckets is not None:
            found[name] = (count, buckets)
    return found


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


def metric_history(run_id: int, key: str, *, offset: int = 0, limit: int) -> list[tuple[int, float | None, float]]:
    """Every value logged for (run, key) as (step, value, wall_time), by step then time: replaced values too.

    Values a later one replaced at their step (`ReplacedMetric`) come before it when their times tie.
    """
    latest = Metric.objects.filter(run_id=run_id, key=key)
    replaced = ReplacedMetric.objects.filter(run_id=run_id, key=key)
    if not replaced.exists():  # nearly always: the (run, key, step) index pages it
        return list(latest.order_by("step").values_list("step", "value", "wall_time")[offset:offset + limit])
    order = ("step", "wall_time", "is_latest", "seq")
    union = (replaced.annotate(is_latest=Value(0), seq=F("id")).values_list("step", "value", "wall_time", *order[2:])
             .union(latest.annotate(is_latest=Value(1), seq=Value(0)).values_list("step", "value", "wall_time", *order[2:]),
                    all=True)
             .order_by(*order))
    return [row[:3] for row in union[offset:offset + limit]]


def runs_for_listing(user: User | AnonymousUser, *, project: Project | None = None) -> QuerySet[Run]:
    """Runs of `project` (access already checked) or every run `user` may see; filter, order, then `run_rows`."""
    return Run.objects.filter(project=project) if project is not None else runs_visible_to(user)


RUN_ROW_FIELDS = (
    "id", "project_id", "number", "name", "kind", "state", "params", "gpus", "priority", "attempt",
    "pending_reason", "failure_reason", "exit_code", "progress", "sweep_id", "cloned_from_id",
    "created_at", "scheduled_at", "started_at", "finished_at",
)
RUN_ROW_JSON_FIELDS = ("params", "progress", "tags", "metrics")
RUN_ROW_TIME_FIELDS = ("created_at", "scheduled_at", "started_at", "finished_at")


def run_page(runs: QuerySet[Run], *, offset: int = 0, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    """One page of `runs` in their order, and how many runs match in all: the API's hot path.

    One query whatever the page size, and no model instances: the page's ids with a window count
    and position, joined to owner, project, tags and metric summaries. Each row has the keys of
    RUN_ROW_FIELDS plus "project" (owner/slug), "owner", "tags" and "metrics". The fields in
    RUN_ROW_JSON_FIELDS are JSON text as the database wrote it ("metrics": {key: {last,
    last_step, min, max, count}}, by the `nonfinite` rule), so that a response can embed them
    without parsing; the RUN_ROW_TIME_FIELDS are aware datetimes in UTC.
    """
    ordering: list[Any] = list(runs.query.order_by) or ["-id"]
    ids = (
        runs.order_by()
        .annotate(page_total=Window(Count("id")), page_position=Window(RowNumber(), order_by=ordering))
        .order_by("page_position")
        .values_list("id", "page_total", "page_position")[offset : offset + limit]
    )
    sql, params = ids.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_page_sql(sql), params)
        values = cursor.fetchall()
    return _page_rows(values), _total(values, offset, runs.count)


def project_run_page(project: Project, *, offset: int = 0, limit: int = 50) -> tuple[list[dict[str, Any]], int]:
    """`run_page` of all of `project`'s runs, newest first, in a query planned once per connection."""
    # NOTE: raw SQL bypasses `Run.objects`, so it leaves out soft-deleted runs itself, as that manager does
    ids = ("SELECT id, COUNT(*) OVER (), ROW_NUMBER() OVER (ORDER BY id DESC) FROM experiments_run WHERE project_id = {0} "
           "AND deleted_at IS NULL ")
    typed = ("%s::bigint", "%s::text") if connection.vendor == "postgresql" else ("%s", "%s")
    # NOTE: the project is known, so its path is a parameter rather than three more joins per row.
    sql = _page_sql(ids.format(typed[0]) + "ORDER BY id DESC LIMIT {0} OFFSET {0}".format(typed[0]), project_path=typed[1])
    values = fetch_fixed(sql, [project.id, limit, offset, f"{project.owner_label}/{project.slug}"])
    return _page_rows(values), _total(values, offset, lambda: Run.objects.filter(project=project).count())


def _total(values: list[tuple], offset: int, count: Callable[[], int]) -> int:
    if values:
        return int(values[0][0])
    return count() if offset else 0  # past the end, no row carries the window's count


_FINITE = "CASE WHEN s.{0} BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308 THEN s.{0} END"
# NOTE: `last` as `nonfinite.json_value` writes it: NULL (NaN) and ±inf as the strings "NaN", "Infinity", "-Infinity".
_LAST = {
    "postgresql": "CASE WHEN s.last IS NULL THEN to_json('NaN'::text) WHEN s.last = 'Infinity'::float8 THEN "
                  "to_json('Infinity'::text) WHEN s.last = '-Infinity'::float8 THEN to_json('-Infinity'::text) "
                  "ELSE to_json(s.last) END",
    "sqlite": "CASE WHEN s.last IS NULL THEN 'NaN' WHEN s.last > 1.7976931348623157e308 THEN 'Infinity' "
              "WHEN s.last < -1.7976931348623157e308 THEN '-Infinity' ELSE s.last END",
}
_SUMMARY_PAIRS = (
    "'last', {last}, 'last_step', s.last_step, 'min', " + _FINITE.format("min")
    + ", 'max', " + _FINITE.format("max") + ", 'count', s.count"
)
# NOTE: each dialect builds the tags array and the summaries object in the row's own query.
_JSON_SQL = {
    "postgresql": (
        "r.params::text", "r.progress::text",
        "(SELECT json_agg(t.name ORDER BY t.name) FROM experiments_runtag t WHERE t.run_id = r.id)::text",
        f"(SELECT json_object_agg(s.key, json_build_object({_SUMMARY_PAIRS.format(last=_LAST['postgresql'])}) "  # noqa: S608
        "ORDER BY s.key) "
        "FROM experiments_metricsummary s WHERE s.run_id = r.id)::text",
    ),
    "sqlite": (
        "r.params", "r.progress",
        "(SELECT json_group_array(name) FROM "
        "(SELECT t.name FROM experiments_runtag t WHERE t.run_id = r.id ORDER BY t.name))",
        f"(SELECT json_group_object(s.key, json_object({_SUMMARY_PAIRS.format(last=_LAST['sqlite'])})) FROM "  # noqa: S608
        "(SELECT * FROM experiments_metricsummary s0 WHERE s0.run_id = r.id ORDER BY s0.key) s)",
    ),
}
_ROW_COLUMNS = (
    "id", "project_id", "number", "name", "kind", "state", "params", "gpus", "priority", "attempt",
    "pending_reason", "failure_reason", "exit_code", "progress", "sweep_id", "cloned_from_id",
    "created_at", "scheduled_at", "started_at", "finished_at", "owner", "project", "tags", "metrics",
)


def _page_sql(ids_sql: str, *, project_path: str = "") -> str:
    """The rows for `ids_sql`, which selects (id, total, position) of one page.

    `project_path` is the placeholder for the path of the one project all runs belong to;
    without it each row's project path is joined in.
    """
    params_sql, progress_sql, tags_sql, metrics_sql = _JSON_SQL[connection.vendor]
    path_sql, path_joins = project_path, ""
    if not project_path:
        path_sql = "COALESCE(pu.username, pt.slug) || '/' || p.slug"
        path_joins = (
            "JOIN projects_project p ON p.id = r.project_id LEFT JOIN auth_user pu ON pu.id = p.owner_user_id "
            "LEFT JOIN accounts_team pt ON pt.id = p.team_id "
        )
    return (
        f"WITH page (id, total, position) AS ({ids_sql}) "  # noqa: S608 -- the ORM's SQL; values stay parameters
        f"SELECT page.total, r.id, r.project_id, r.number, r.name, r.kind, r.state, {params_sql}, r.gpus, "
        "r.priority, r.attempt, r.pending_reason, r.failure_reason, r.exit_code, "
        f"{progress_sql}, r.sweep_id, r.cloned_from_id, r.created_at, r.scheduled_at, r.started_at, r.finished_at, "
        f"u.username, {path_sql}, {tags_sql}, {metrics_sql} "
        f"FROM page JOIN experiments_run r ON r.id = page.id {path_joins}"
        "JOIN auth_user u ON u.id = r.owner_id ORDER BY page.position"
    )


def _page_rows(values: list[tuple]) -> list[dict[str, Any]]:
    rows = [dict(zip(_ROW_COLUMNS, row[1:], strict=True)) for row in values]  # row[0] is the total
    naive = connection.vendor == "sqlite"  # SQLite's datetimes come back naive, in UTC
    for row in rows:
        if naive:
            for name in RUN_ROW_TIME_FIELDS:
                if row[name] is not None:
                    row[name] = row[name].replace(tzinfo=UTC)
        row["tags"] = row["tags"] or "[]"
        row["metrics"] = row["metrics"] or "{}"
        if row["progress"] in (None, "null"):
            row["progress"] = "{}"
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
