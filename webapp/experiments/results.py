"""What runs report back: metrics, log lines, artifacts. Every write is idempotent."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import connection, transaction

from webapp.experiments.models import Artifact, LogLine, Metric, MetricSummary, Run

MAX_METRIC_BATCH = 10_000
MAX_LOG_LINE_CHARS = 10_000


class ResultError(ValueError):
    """A malformed report (bad key, non-finite step, oversized batch); nothing was stored."""


@dataclass(frozen=True)
class MetricPoint:
    key: str
    step: int
    value: float
    wall_time: float


def metrics_log(*, run_id: int, points: list[MetricPoint]) -> int:
    """Store points not stored before (unique on run, key, step) and update summaries; returns how many were new."""
    if len(points) > MAX_METRIC_BATCH:
        raise ResultError(f"a batch holds at most {MAX_METRIC_BATCH:,} points, got {len(points):,}")
    isfinite = math.isfinite
    for point in points:
        if not point.key or len(point.key) > 200:
            raise ResultError(f"metric key {point.key!r} must be 1-200 characters")
        if not isfinite(point.wall_time):
            raise ResultError(f"metric {point.key!r} has a non-finite wall time")
    latest: dict[tuple[str, int], MetricPoint] = {(p.key, p.step): p for p in points}  # last write in a batch wins
    with transaction.atomic():
        Run.objects.select_for_update().filter(id=run_id).values_list("id", flat=True).get()  # one writer per run
        points_in = list(latest.values())
        groups = _by_key(points_in)
        summaries = {s.key: s for s in MetricSummary.objects.filter(run_id=run_id, key__in=groups)}
        if connection.vendor != "postgresql":
            fresh = _insert_new(run_id, points_in)
        elif _only_new_steps(groups, summaries) and _copy_new(run_id, points_in):
            fresh = points_in
        else:
            fresh = _insert_new_pg(run_id, points_in)
        _update_summaries(run_id, groups if fresh is points_in else _by_key(fresh), summaries)
    return len(fresh)


def _by_key(points: list[MetricPoint]) -> dict[str, list[MetricPoint]]:
    groups: dict[str, list[MetricPoint]] = {}
    for point in points:
        group = groups.get(point.key)
        if group is None:
            groups[point.key] = [point]
        else:
            group.append(point)
    return groups


def _only_new_steps(groups: dict[str, list[MetricPoint]], summaries: dict[str, MetricSummary]) -> bool:
    """Whether every point is past its key's last stored step: the usual case of a run logging as it goes."""
    for key, group in groups.items():
        summary = summaries.get(key)
        if summary is not None and min(p.step for p in group) <= summary.last_step:
            return False
    return True


def _insert_new(run_id: int, points: list[MetricPoint]) -> list[MetricPoint]:
    """Insert the points not stored yet; returns them."""
    keys = {p.key for p in points}
    steps = {p.step for p in points}
    existing = set(Metric.objects.filter(run_id=run_id, key__in=keys, step__in=steps).values_list("key", "step"))
    fresh = [p for p in points if (p.key, p.step) not in existing]
    Metric.objects.bulk_create(
        [Metric(run_id=run_id, key=p.key, step=p.step, value=_stored(p.value), wall_time=p.wall_time) for p in fresh],
        batch_size=2000,
    )
    return fresh


def _copy_new(run_id: int, points: list[MetricPoint]) -> bool:
    """COPY points that cannot be stored yet straight into the table (binary, no conflict handling).

    The summaries say no stored point has these steps, but a point stored without a summary
    would make the COPY fail: then nothing is stored (a savepoint) and the caller takes the
    conflict-checking path. Returns whether the points were stored.
    """
    table = connection.ops.quote_name(Metric._meta.db_table)
    connection.ensure_connection()
    try:
        with transaction.atomic(), psycopg.Cursor(connection.connection) as cursor:
            with cursor.copy(f"COPY {table} (run_id, key, step, value, wall_time) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "varchar", "int8", "float8", "float8"])
                write = copy.write_row
                for p in points:
                    write((run_id, p.key, p.step, None if p.value != p.value else p.value, p.wall_time))  # NaN: NULL
    except psycopg.errors.UniqueViolation:
        return False
    return True


def _insert_new_pg(run_id: int, points: list[MetricPoint]) -> list[MetricPoint]:
    """Insert what is not stored yet in one PostgreSQL statement: unnest the columns, skip conflicts, return what was new."""
    # NOTE: one round trip instead of a pre-select plus bulk_create; the unique (run, key, step) index decides.
    table = connection.ops.quote_name(Metric._meta.db_table)
    sql = (
        f"INSERT INTO {table} (run_id, key, step, value, wall_time) "  # noqa: S608 -- the model's own table name
        "SELECT %b, * FROM unnest(%b::varchar[], %b::bigint[], %b::float8[], %b::float8[]) "
        "ON CONFLICT (run_id, key, step) DO NOTHING RETURNING key, step"
    )
    params = [run_id, [p.key for p in points], [p.step for p in points],
              [_stored(p.value) for p in points], [p.wall_time for p in points]]
    connection.ensure_connection()
    # NOTE: a plain psycopg cursor binds the arrays on the server (binary); Django's client-side
    # binding would spell out 50,000 literals in the SQL text.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        inserted = set(cursor.fetchall())
    return [p for p in points if (p.key, p.step) in inserted]


def _update_summaries(run_id: int, groups: dict[str, list[MetricPoint]], current: dict[str, MetricSummary]) -> None:
    """Fold the new points of each key into its summary (`current`: the stored ones, read under the run's lock)."""
    created, updated = [], []
    for key, group in groups.items():
        values = [p.value for p in group if p.value == p.value]  # NaN is the one value unequal to itself
        low, high = (min(values), max(values)) if values else (None, None)
        newest = max(group, key=_step)
        summary = current.get(key)
        if summary is None:
            created.append(
                MetricSummary(
                    run_id=run_id, key=key, last=_stored(newest.value), last_step=newest.step,
                    min=low, max=high, count=len(group),
                )
            )
            continue
        if newest.step >= summary.last_step:
            summary.last, summary.last_step = _stored(newest.value), newest.step
        summary.min = _pick(min, summary.min, low)
        summary.max = _pick(max, summary.max, high)
        summary.count += len(group)
        updated.append(summary)
    MetricSummary.objects.bulk_create(created)
    MetricSummary.objects.bulk_update(updated, ["last", "last_step", "min", "max", "count"])


def _step(point: MetricPoint) -> int:
    return point.step


def _stored(value: float) -> float | None:
    """NaN is stored as NULL: SQLite cannot keep NaN and JSON cannot carry it."""
    return None if math.isnan(value) else value


def _pick(choose, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)


def logs_append(*, run_id: int, lines: Iterable[tuple[int, str, str]]) -> int:
    """Store (seq, stream, text) log lines; a seq stored before is ignored. Returns lines offered."""
    rows = [
        LogLine(run_id=run_id, seq=seq, stream=stream if stream in ("stdout", "stderr") else "stdout",
                text=text[:MAX_LOG_LINE_CHARS])
        for seq, stream, text in lines
    ]
    LogLine.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return len(rows)


def artifact_store(*, run_id: int, name: str, kind: str, file: File, step: int | None = None) -> Artifact:
    """Copy a file into artifact storage under the run, with its size and SHA-256; same name replaces."""
    if not name or len(name) > 255 or name.startswith(("/", ".")) or ".." in name.split("/"):
        raise ResultError(f"artifact name {name!r} is not a safe relative path")
    digest = hashlib.sha256()
    size = 0
    for chunk in file.chunks():
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    path = default_storage.save(f"runs/{run_id}/{kind}s/{name}", file)
    with transaction.atomic():
        old = Artifact.objects.filter(run_id=run_id, name=name).first()
        if old:
            old_path = old.storage_path
            old.delete()
            if old_path != path:
                default_storage.delete(old_path)
        return Artifact.objects.create(
            run_id=run_id, name=name, kind=kind, step=step, size=size, sha256=digest.hexdigest(), storage_path=path
        )
