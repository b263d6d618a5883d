"""PostgreSQL statements of `metrics_log`'s hot path: raw psycopg, bound on the server, pipelined.

A 100-point batch is dominated by round trips and the ORM's query building, not by the rows:
`locked_read` takes the run's lock, reads the batch's summaries with each key's last rollup chunk
and (for a small batch) inserts the points in one pipeline; `states_store` upserts summaries and
rollup chunks in another. Inside `folded_transaction` the transaction's BEGIN travels in the first
pipeline and its COMMIT in the second (psycopg's own BEGIN and Django's COMMIT are a round trip
each), so a batch costs two round trips. Each statement shows in `connection.queries` like Django's own.
Array parameters go as PostgreSQL's binary arrays built here (numpy for the numbers), not through
psycopg's per-element list dumping, which cost more than the rest of a 100-point request's encoding.
"""

from __future__ import annotations

import struct
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import psycopg
from django.db import connection, transaction
from psycopg import pq
from psycopg.adapt import Dumper

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


class _Encoded:
    """A one-dimensional array already in PostgreSQL's binary array format, sent as it is."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


# kind -> (element type oid, array type oid, big-endian numpy dtype of a fixed-size element or None)
_KINDS = {
    "int4": (23, 1007, ">i4"), "int8": (20, 1016, ">i8"), "float8": (701, 1022, ">f8"),
    "varchar": (1043, 1015, None), "bytea": (17, 1001, None),
}
_WITH_SIZE = {"int4": struct.Struct(">ii"), "int8": struct.Struct(">iq"), "float8": struct.Struct(">id")}  # (size, value)
_ARRAY_HEAD = struct.Struct(">iiIii")  # dimensions (1), has nulls, element oid, length, lower bound (1)
_NULL = struct.pack(">i", -1)
_SIZE = struct.Struct(">i")


def _marker(kind: str) -> tuple[type[_Encoded], type[Dumper]]:
    array_oid = _KINDS[kind][1]
    marker = type(f"Encoded_{kind}", (_Encoded,), {"__slots__": ()})

    class ArrayDumper(Dumper):
        format = pq.Format.BINARY
        oid = array_oid

        def dump(self, obj: _Encoded) -> bytes:
            return obj.data

    return marker, ArrayDumper


_MARKERS = {kind: _marker(kind) for kind in _KINDS}
_ADAPTED: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()


def _adapted(conn: psycopg.Connection) -> psycopg.Connection:
    """The connection, taught (once) to send `_Encoded` arrays as they are."""
    if conn not in _ADAPTED:
        for marker, dumper in _MARKERS.values():
            conn.adapters.register_dumper(marker, dumper)
        _ADAPTED.add(conn)
    return conn


def pg_array(values: Sequence[Any] | np.ndarray, kind: str) -> _Encoded:
    """`values` (None for NULL) as a binary PostgreSQL array of `kind` (int4, int8, float8, varchar, bytea)."""
    element_oid, _, dtype = _KINDS[kind]
    count = len(values)
    if not count:
        return _MARKERS[kind][0](struct.pack(">iiI", 0, 0, element_oid))
    if dtype is not None and (isinstance(values, np.ndarray) or None not in values):
        fields = np.empty(count, dtype=[("size", ">i4"), ("value", dtype)])
        fields["size"] = np.dtype(dtype).itemsize
        fields["value"] = values
        return _MARKERS[kind][0](_ARRAY_HEAD.pack(1, 0, element_oid, count, 1) + fields.tobytes())
    if dtype is not None:  # numbers with NULLs among them
        item, size = _WITH_SIZE[kind], np.dtype(dtype).itemsize
        parts = [_NULL if value is None else item.pack(size, value) for value in values]
    else:
        raw = [value.encode() if isinstance(value, str) else value for value in values]
        parts = [_NULL if value is None else _SIZE.pack(len(value)) + bytes(value) for value in raw]
    has_null = int(any(value is None for value in values))
    return _MARKERS[kind][0](_ARRAY_HEAD.pack(1, has_null, element_oid, count, 1) + b"".join(parts))


class Folded:
    """The state of a `folded_transaction`: whether its BEGIN went out, and its COMMIT."""

    __slots__ = ("begun", "committed")

    def __init__(self) -> None:
        self.begun = self.committed = False


_FOLDED: ContextVar[Folded | None] = ContextVar("kiln_metrics_folded", default=None)


@contextmanager
def folded_transaction() -> Iterator[Folded]:
    """One transaction around `locked_read` ... `states_store`, its BEGIN and COMMIT sent in their pipelines.

    Only outside any transaction (Django's autocommit), and only for this module's statements and
    reads between them: Django does not know of it, so no ORM write (or atomic block) may run inside.
    An exception rolls back what began; leaving normally before `states_store` committed commits.
    """
    if connection.in_atomic_block or not connection.get_autocommit():
        raise RuntimeError("folded_transaction runs only outside a transaction")
    connection.ensure_connection()
    state = Folded()
    token = _FOLDED.set(state)
    try:
        yield state
    except BaseException:
        if state.begun and not state.committed:
            _command("ROLLBACK")
        raise
    else:
        if state.begun and not state.committed:
            _command("COMMIT")
            state.committed = True
    finally:
        _FOLDED.reset(token)


def _command(sql: str) -> None:
    started = time.monotonic()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql)
    _logged(sql, started)


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@cache
def _lock_sql() -> str:
    """The run's lock, compiled by the ORM once (so `Run.objects` decides which runs exist) with a placeholder id."""
    queryset = Run.objects.select_for_update().filter(id=-1).order_by().values_list("attempt")
    with transaction.atomic(savepoint=False):  # the ORM compiles FOR UPDATE only in a transaction; nothing runs here
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


_INSERT_KINDS = ("varchar", "int8", "float8", "float8")
_SUMMARY_KINDS = ("varchar", "float8", "int8", "float8", "float8", "int8")
_CUT_KINDS = ("varchar", "int4")
_CHUNK_KINDS = ("varchar", "int4", "bytea", "int8")


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
    `insert`: the key, step, value and wall columns (lists or arrays).
    """
    lock_sql = _lock_sql()  # compiled (once) before anything is sent
    connection.ensure_connection()
    started = time.monotonic()
    conn = _adapted(connection.connection)
    lock, read, write = psycopg.Cursor(conn), psycopg.Cursor(conn), psycopg.Cursor(conn)
    folded = _FOLDED.get()
    begins = folded is not None and not folded.begun
    try:
        with conn.pipeline():
            if begins:
                folded.begun = True  # type: ignore[union-attr]
                lock.execute("BEGIN")
            lock.execute(lock_sql, [run_id], prepare=True)
            read.execute(_read_sql(), [run_id, pg_array(keys, "varchar")], prepare=True, binary=True)
            if insert is not None:
                write.execute(insert_sql(), [run_id, *map(pg_array, insert, _INSERT_KINDS)], prepare=True, binary=True)
        found, rows, inserted = lock.fetchall(), read.fetchall(), write.fetchall() if insert is not None else None
    finally:
        for cursor in (lock, read, write):
            cursor.close()
    for sql in (*(["BEGIN"] if begins else []), _lock_sql(), _read_sql(), *([insert_sql()] if insert is not None else [])):
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
    (key, chunk) on, upsert rollup chunks (key, chunk, buckets, count): one round trip, which inside
    `folded_transaction` also commits (so it is the transaction's last statement)."""
    upsert_summaries, delete_chunks, upsert_chunks = _store_sql()
    connection.ensure_connection()
    started = time.monotonic()
    conn = _adapted(connection.connection)
    statements = [(upsert_summaries, [run_id, *map(pg_array, summaries, _SUMMARY_KINDS)])] if summaries[0] else []
    statements += [(delete_chunks, [*map(pg_array, cut, _CUT_KINDS), run_id])] if cut[0] else []
    statements += [(upsert_chunks, [run_id, *map(pg_array, chunks, _CHUNK_KINDS)])] if chunks[0] else []
    folded = _FOLDED.get()
    commits = folded is not None and folded.begun and not folded.committed
    with conn.pipeline(), psycopg.Cursor(conn) as cursor:
        for sql, params in statements:
            cursor.execute(sql, params, prepare=True, binary=True)
        if commits:
            cursor.execute("COMMIT")
    if commits:
        folded.committed = True  # type: ignore[union-attr]
    for sql in [sql for sql, _ in statements] + (["COMMIT"] if commits else []):
        _logged(sql, started)
