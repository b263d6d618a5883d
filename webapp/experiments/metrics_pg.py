"""PostgreSQL statements of `metrics_log`'s hot path: raw psycopg, bound on the server, pipelined.

A 100-point batch is dominated by round trips and the ORM's query building, not by the rows:
`locked_read` takes the run's lock, reads the batch's summaries with each key's last rollup chunk
and (for a small batch) inserts the points in one pipeline; `states_store` upserts summaries and
rollup chunks in another. Each statement shows in `connection.queries` like Django's own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg
from django.db import connection

from webapp.experiments.models import Metric, MetricRollup, MetricSummary, Run

# NOTE: past this many points the binary COPY beats one INSERT ... ON CONFLICT over unnest'ed arrays.
INSERT_MAX_POINTS = 2000


@dataclass(frozen=True)
class Locked:
    """What `locked_read` found: the run's attempt, the batch's summaries, each key's last rollup chunk, what it inserted."""

    attempt: int
    summaries: dict[str, MetricSummary]
    last_chunks: dict[str, tuple[int, bytes, int]]  # key -> (chunk, buckets, count)
    inserted: list[tuple[str, int]] | None  # (key, step) stored by the pipelined insert; None when not asked


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@cache
def _lock_sql() -> str:
    """The run's lock, compiled by the ORM once (so `Run.objects` decides which runs exist) with a placeholder id."""
    queryset = Run.objects.select_for_update().filter(id=-1).order_by().values_list("attempt")
    sql, params = queryset.query.sql_with_params()
    if list(params) != [-1]:
        raise AssertionError(f"the run's lock takes only the run id, not {params}")
    return sql


@cache
def _read_sql() -> str:
    summaries, rollups = _table(MetricSummary), _table(MetricRollup)
    return (
        f"SELECT s.key, s.last, s.last_step, s.min, s.max, s.count, t.chunk, t.buckets, t.count FROM {summaries} s "  # noqa: S608
        f"LEFT JOIN LATERAL (SELECT r.chunk, r.buckets, r.count FROM {rollups} r WHERE r.run_id = s.run_id AND r.key = s.key "
        "ORDER BY r.chunk DESC LIMIT 1) t ON true WHERE s.run_id = %s AND s.key = ANY(%s::varchar[])"
    )


@cache
def insert_sql() -> str:
    """Insert what is not stored yet: unnest the columns, skip conflicts (the unique (run, key, step) index decides)."""
    return (
        f"INSERT INTO {_table(Metric)} (run_id, key, step, value, wall_time) "  # noqa: S608 -- the model's own table
        "SELECT %s, k, s, NULLIF(v, 'NaN'), w FROM unnest(%b::varchar[], %b::bigint[], %b::float8[], %b::float8[]) "
        "AS t(k, s, v, w) ON CONFLICT (run_id, key, step) DO NOTHING RETURNING key, step"
    )


def _logged(sql: str, started: float) -> None:
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def locked_read(run_id: int, keys: Sequence[str], insert: list[Any] | None = None) -> Locked:
    """Lock the run, then read the keys' summaries and last rollup chunks (and run `insert_sql` with `insert`) in one round trip.

    The read is its own statement after the lock, so it sees what the previous lock holder committed.
    Run.DoesNotExist when there is no such run (the caller's transaction then undoes the insert).
    """
    connection.ensure_connection()
    started = time.monotonic()
    conn = connection.connection
    lock, read, write = psycopg.Cursor(conn), psycopg.Cursor(conn), psycopg.Cursor(conn)
    try:
        with conn.pipeline():
            lock.execute(_lock_sql(), [run_id], prepare=True)
            read.execute(_read_sql(), [run_id, list(keys)], prepare=True, binary=True)
            if insert is not None:
                write.execute(insert_sql(), [run_id, *insert], prepare=True, binary=True)
        found, rows, inserted = lock.fetchall(), read.fetchall(), write.fetchall() if insert is not None else None
    finally:
        for cursor in (lock, read, write):
            cursor.close()
    for sql in (_lock_sql(), _read_sql(), *([insert_sql()] if insert is not None else [])):
        _logged(sql, started)
    if not found:
        raise Run.DoesNotExist("Run matching query does not exist.")
    summaries, last_chunks = {}, {}
    for key, last, last_step, low, high, count, chunk, buckets, chunk_count in rows:
        summaries[key] = MetricSummary(run_id=run_id, key=key, last=last, last_step=last_step, min=low, max=high, count=count)
        if chunk is not None:
            last_chunks[key] = (chunk, buckets, chunk_count)
    return Locked(found[0][0], summaries, last_chunks, inserted)


@cache
def _store_sql() -> tuple[str, str, str]:
    summaries, rollups = _table(MetricSummary), _table(MetricRollup)
    return (
        f"INSERT INTO {summaries} (run_id, key, last, last_step, min, max, count) "  # noqa: S608 -- the models' own tables
        "SELECT %s, * FROM unnest(%b::varchar[], %b::float8[], %b::bigint[], %b::float8[], %b::float8[], %b::bigint[]) "
        "ON CONFLICT (run_id, key) DO UPDATE SET last = EXCLUDED.last, last_step = EXCLUDED.last_step, "
        "min = EXCLUDED.min, max = EXCLUDED.max, count = EXCLUDED.count",
        f"DELETE FROM {rollups} r USING unnest(%b::varchar[], %b::int[]) AS cut(key, chunk) "  # noqa: S608
        "WHERE r.run_id = %s AND r.key = cut.key AND r.chunk >= cut.chunk",
        f"INSERT INTO {rollups} (run_id, key, chunk, buckets, count) "  # noqa: S608
        "SELECT %s, * FROM unnest(%b::varchar[], %b::int[], %b::bytea[], %b::bigint[]) "
        "ON CONFLICT (run_id, key, chunk) DO UPDATE SET buckets = EXCLUDED.buckets, count = EXCLUDED.count",
    )


def states_store(run_id: int, summaries: list[list[Any]], cut: list[list[Any]], chunks: list[list[Any]]) -> None:
    """Upsert summaries (columns key, last, last_step, min, max, count), delete rollup chunks from
    (key, chunk) on, upsert rollup chunks (key, chunk, buckets, count): one round trip."""
    upsert_summaries, delete_chunks, upsert_chunks = _store_sql()
    connection.ensure_connection()
    started = time.monotonic()
    conn = connection.connection
    statements = [(upsert_summaries, [run_id, *summaries])] if summaries[0] else []
    statements += [(delete_chunks, [*cut, run_id])] if cut[0] else []
    statements += [(upsert_chunks, [run_id, *chunks])] if chunks[0] else []
    with conn.pipeline(), psycopg.Cursor(conn) as cursor:
        for sql, params in statements:
            cursor.execute(sql, params, prepare=True, binary=True)
    for sql, _ in statements:
        _logged(sql, started)
