"""What runs report back: metrics, log lines, artifacts. Every write is idempotent."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import psycopg
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Max, Q

from webapp.experiments import metrics_pg, rollup
from webapp.experiments.models import Artifact, LogLine, Metric, MetricRollup, MetricSummary, Run

log = logging.getLogger(__name__)
MAX_METRIC_BATCH = 10_000
MAX_LOG_LINE_CHARS = 10_000
# System metrics (worker.sysmetrics: CPU, memory, processes, GPUs; sys/node<k>/ for node k > 0 of a
# multi-node run) are series over wall time: their step is a per-run sample number, their x axis the
# point's wall_time. They are charted apart, left out of the run table's default columns, and never
# superseded by a resumed attempt (their steps are not training steps).
SYSTEM_PREFIX = "sys/"


def is_system(key: str) -> bool:
    """Whether `key` names a system metric (a series over wall time)."""
    return key.startswith(SYSTEM_PREFIX)


def system_next_step(run_id: int) -> int:
    """The step an attempt's first system sample takes: one past every system point the run has stored."""
    last = MetricSummary.objects.filter(run_id=run_id, key__startswith=SYSTEM_PREFIX).aggregate(m=Max("last_step"))["m"]
    return 0 if last is None else last + 1


class ResultError(ValueError):
    """A malformed report (bad key, non-finite step, oversized batch); nothing was stored."""


@dataclass(frozen=True)
class MetricPoint:
    key: str
    step: int
    value: float
    wall_time: float


@dataclass(frozen=True)
class KeyPoints:
    """The points of one key as columns, in step order, one per step; NaN values stay NaN here."""

    steps: np.ndarray
    values: np.ndarray
    walls: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)

    def only(self, keep: np.ndarray) -> KeyPoints:
        return KeyPoints(self.steps[keep], self.values[keep], self.walls[keep])


def metrics_log(*, run_id: int, points: list[MetricPoint], attempt: int | None = None) -> int:
    """Store points not stored before (unique on run, key, step), updating summaries and rollups; returns how many were new.

    `attempt`: the attempt that logged them (the worker's path). Points of an attempt that a later
    one superseded by resuming from an earlier step are kept for audit only (`superseding`).
    """
    if len(points) > MAX_METRIC_BATCH:
        raise ResultError(f"a batch holds at most {MAX_METRIC_BATCH:,} points, got {len(points):,}")
    return _groups_log(run_id, _columns(points), attempt)


def metrics_log_series(*, run_id: int, series: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                       attempt: int | None = None) -> int:
    """`metrics_log` for points given as columns: (key, steps, values, walls) arrays, a key possibly more than once.

    The API's path: no object per point. The same checks and rules (last write of a step wins).
    """
    by_key: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for key, steps, values, walls in series:
        by_key.setdefault(key, []).append((steps, values, walls))
    total = sum(len(part[0]) for parts in by_key.values() for part in parts)
    if total > MAX_METRIC_BATCH:
        raise ResultError(f"a batch holds at most {MAX_METRIC_BATCH:,} points, got {total:,}")
    groups = {}
    for key, parts in by_key.items():
        steps, values, walls = (np.concatenate([part[i] for part in parts]) if len(parts) > 1 else parts[0][i] for i in range(3))
        if len(steps):
            groups[key] = _checked(key, np.asarray(steps, np.int64), np.asarray(values, np.float64), np.asarray(walls, np.float64))
    return _groups_log(run_id, groups, attempt)


def _groups_log(run_id: int, groups: dict[str, KeyPoints], attempt: int | None) -> int:
    postgresql = connection.vendor == "postgresql"
    # NOTE: a small batch of the API's path is inserted in the lock's round trip (nothing to set aside first),
    # and outside a transaction its BEGIN and COMMIT travel in the two pipelines (only metrics_pg's statements run)
    insert_now = postgresql and attempt is None and sum(map(len, groups.values())) <= metrics_pg.INSERT_MAX_POINTS
    folded = insert_now and not connection.in_atomic_block
    with metrics_pg.folded_transaction() if folded else transaction.atomic():
        if postgresql:
            locked = metrics_pg.locked_read(run_id, list(groups), _insert_params(groups) if insert_now else None)
            current, summaries, last_chunks = locked.attempt, locked.summaries, locked.last_chunks
        else:
            current = Run.objects.select_for_update().filter(id=run_id).values_list("attempt", flat=True).get()  # one writer per run
            summaries, last_chunks = {s.key: s for s in MetricSummary.objects.filter(run_id=run_id, key__in=groups)}, {}
        if attempt is not None and attempt < current:
            # imported here: that module imports this one
            from webapp.experiments.superseding import superseded_set_aside

            groups = superseded_set_aside(run_id, attempt, groups)
        if insert_now:
            fresh = _inserted(groups, locked.inserted or [])
        elif not postgresql:
            fresh = _insert_new(run_id, groups)
        elif _only_new_steps(groups, summaries) and _copy_new(run_id, groups):
            fresh = groups
        else:
            fresh = _insert_new_pg(run_id, groups)
        _summaries_update(run_id, fresh, summaries, last_chunks)
    return sum(map(len, fresh.values()))


def _columns(points: list[MetricPoint]) -> dict[str, KeyPoints]:
    """The batch checked and split by key into columns; the last write of a (key, step) wins."""
    by_key: dict[str, list[MetricPoint]] = {}
    for point in points:
        group = by_key.get(point.key)
        if group is None:
            by_key[point.key] = [point]
        else:
            group.append(point)
    groups = {}
    for key, group in by_key.items():
        try:
            steps = np.array([p.step for p in group], dtype=np.int64)
        except (OverflowError, TypeError, ValueError):
            raise ResultError(f"metric {key!r} has a step that is not a 64-bit integer") from None
        values = np.array([p.value for p in group], dtype=np.float64)
        walls = np.array([p.wall_time for p in group], dtype=np.float64)
        groups[key] = _checked(key, steps, values, walls)
    return groups


def _checked(key: str, steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> KeyPoints:
    """One key's points checked, in step order, the last write of each step kept."""
    if not key or len(key) > 200 or "\0" in key:
        raise ResultError(f"metric key {key!r} must be 1-200 characters, none of them NUL")
    if not np.isfinite(walls).all():
        raise ResultError(f"metric {key!r} has a non-finite wall time")
    if len(steps) < 2 or bool((steps[1:] > steps[:-1]).all()):  # the usual batch: already in order, no repeats
        return KeyPoints(steps, values, walls)
    order = np.argsort(steps, kind="stable")
    last = np.ones(len(order), bool)  # the last write of each step: the end of its run of equal steps
    last[:-1] = steps[order[1:]] != steps[order[:-1]]
    return KeyPoints(steps, values, walls).only(order[last])


def _only_new_steps(groups: dict[str, KeyPoints], summaries: dict[str, MetricSummary]) -> bool:
    """Whether every point is past its key's last stored step: the usual case of a run logging as it goes."""
    return all(key not in summaries or group.steps[0] > summaries[key].last_step for key, group in groups.items())


def _insert_new(run_id: int, groups: dict[str, KeyPoints]) -> dict[str, KeyPoints]:
    """Insert the points not stored yet; returns them."""
    steps = {int(step) for group in groups.values() for step in group.steps}
    stored = Metric.objects.filter(run_id=run_id, key__in=groups, step__in=steps).values_list("key", "step")
    taken: dict[str, list[int]] = {}
    for key, step in stored:
        taken.setdefault(key, []).append(step)
    fresh = {key: group.only(~np.isin(group.steps, taken.get(key, []))) for key, group in groups.items()}
    Metric.objects.bulk_create(
        [
            Metric(run_id=run_id, key=key, step=step, value=_stored(value), wall_time=wall)
            for key, group in fresh.items()
            for step, value, wall in zip(group.steps.tolist(), group.values.tolist(), group.walls.tolist(), strict=True)
        ],
        batch_size=2000,
    )
    return fresh


# NOTE: PostgreSQL's binary COPY: a header, then per row its field count and each field as
# (big-endian length, value), length -1 for NULL; a NaN value is stored as NULL, so has no bytes.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"


def _copy_rows(run_id: int, key: bytes, group: KeyPoints) -> bytes:
    """The binary COPY rows of one key's points, built as numpy records (no per-point Python)."""
    nan = np.isnan(group.values)
    parts = []
    for null, chosen in ((False, ~nan), (True, nan)):
        if not chosen.any():
            continue
        fields = [("n", ">i2"), ("l_run", ">i4"), ("run", ">i8"), ("l_key", ">i4"), ("key", f"S{len(key)}"),
                  ("l_step", ">i4"), ("step", ">i8"), ("l_value", ">i4"), *([] if null else [("value", ">f8")]),
                  ("l_wall", ">i4"), ("wall", ">f8")]
        rows = np.empty(int(chosen.sum()), np.dtype(fields))
        rows["n"], rows["l_run"], rows["run"], rows["l_key"], rows["key"] = 5, 8, run_id, len(key), key
        rows["l_step"], rows["step"], rows["l_value"] = 8, group.steps[chosen], -1 if null else 8
        rows["l_wall"], rows["wall"] = 8, group.walls[chosen]
        if not null:
            rows["value"] = group.values[chosen]
        parts.append(rows.tobytes())
    return b"".join(parts)


def _copy_new(run_id: int, groups: dict[str, KeyPoints]) -> bool:
    """COPY points that cannot be stored yet straight into the table (binary, no conflict handling).

    The summaries say no stored point has these steps, but a point stored without a summary
    would make the COPY fail: then nothing is stored (a savepoint) and the caller takes the
    conflict-checking path. Returns whether the points were stored.
    """
    table = connection.ops.quote_name(Metric._meta.db_table)
    data = b"".join([_COPY_HEADER, *(_copy_rows(run_id, key.encode(), g) for key, g in groups.items()), _COPY_TRAILER])
    connection.ensure_connection()
    try:
        with transaction.atomic(), psycopg.Cursor(connection.connection) as cursor:
            with cursor.copy(f"COPY {table} (run_id, key, step, value, wall_time) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(data)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def _insert_new_pg(run_id: int, groups: dict[str, KeyPoints]) -> dict[str, KeyPoints]:
    """Insert what is not stored yet in one PostgreSQL statement (`metrics_pg.insert_sql`); returns what was new."""
    # NOTE: one round trip instead of a pre-select plus bulk_create. A plain psycopg cursor binds the
    # arrays on the server (binary); Django's client-side binding would spell out 50,000 literals.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(metrics_pg.insert_sql(), [run_id, *_insert_params(groups)])
        return _inserted(groups, cursor.fetchall())


def _insert_params(groups: dict[str, KeyPoints]) -> list[list]:
    """The key, step, value and wall columns of `metrics_pg.insert_sql`."""
    return [[key for key, g in groups.items() for _ in range(len(g))],
            *(np.concatenate([getattr(g, name) for g in groups.values()]).tolist() for name in ("steps", "values", "walls"))]


def _inserted(groups: dict[str, KeyPoints], rows: list[tuple[str, int]]) -> dict[str, KeyPoints]:
    """Each key's points among the (key, step) rows an insert returned."""
    if len(rows) == sum(map(len, groups.values())):  # the usual case: every point was new
        return groups
    inserted: dict[str, list[int]] = {}
    for key, step in rows:
        inserted.setdefault(key, []).append(step)
    return {key: group.only(np.isin(group.steps, inserted.get(key, []))) for key, group in groups.items()}


def _summaries_update(run_id: int, fresh: dict[str, KeyPoints], current: dict[str, MetricSummary],
                      last_chunks: dict[str, tuple[int, bytes, int]]) -> None:
    """Fold each key's new points into its summary and rollup (`current`: the summaries read under the run's lock,
    `last_chunks`: each key's last stored rollup chunk as (chunk, buckets, count) when read with them).

    Points past the key's last step extend them; any other new point (late or backfilled, rare)
    has them rebuilt from the key's stored points.
    """
    fresh = {key: group for key, group in fresh.items() if len(group)}
    tails = _rollup_tails(run_id, {
        key: (current[key], len(group)) for key, group in fresh.items()
        if key in current and group.steps[0] > current[key].last_step
    }, last_chunks)
    states: dict[str, _KeyState] = {}
    for key, group in fresh.items():
        summary = current.get(key)
        if summary is None:
            states[key] = _state_of(group)
        elif key in tails:
            start, tail = tails[key]
            states[key] = _KeyState(
                count=summary.count + len(group), last_step=int(group.steps[-1]), last=_stored(float(group.values[-1])),
                min=_pick(min, summary.min, _finite_min(group)), max=_pick(max, summary.max, _finite_max(group)),
                start=start, buckets=rollup.extend(tail, summary.count, group.steps, group.values, group.walls),
            )
        else:
            states[key] = _state_of(_stored_points(run_id, key))
    _states_store(run_id, states)


@dataclass(frozen=True)
class _KeyState:
    """What to store for one key: its summary, and its rollup's buckets from chunk `start` on."""

    count: int
    last_step: int
    last: float | None
    min: float | None
    max: float | None
    start: int
    buckets: np.ndarray


def _state_of(group: KeyPoints) -> _KeyState:
    """Summary and whole rollup of every point of a key."""
    buckets = rollup.build(group.steps, group.values, group.walls, rollup.width_for(len(group)))
    return _KeyState(len(group), int(group.steps[-1]), _stored(float(group.values[-1])),
                     _finite_min(group), _finite_max(group), 0, buckets)


def _finite_min(group: KeyPoints) -> float | None:
    """The least finite value (NaN and ±inf are not summarised: `nonfinite`), None when there is none."""
    finite = group.values[np.isfinite(group.values)]
    return float(finite.min()) if len(finite) else None


def _finite_max(group: KeyPoints) -> float | None:
    finite = group.values[np.isfinite(group.values)]
    return float(finite.max()) if len(finite) else None


def _rollup_tails(run_id: int, growing: dict[str, tuple[MetricSummary, int]],
                  last_chunks: dict[str, tuple[int, bytes, int]]) -> dict[str, tuple[int, np.ndarray]]:
    """For keys gaining `n` points past their last step: (first chunk, buckets from it on) of their stored rollup.

    That is the last chunk (taken from `last_chunks` when it is the one), or every chunk when the
    width doubles (they come back widened). A key whose stored rollup does not match its summary
    is left out: the caller rebuilds it.
    """
    plans = {}
    for key, (summary, added) in growing.items():
        width, wider = rollup.width_for(summary.count), rollup.width_for(summary.count + added)
        last_chunk = (-(-summary.count // width) - 1) // rollup.CHUNK_BUCKETS
        plans[key] = (0 if wider > width else last_chunk, wider // width)
    rows: dict[str, list[tuple[int, bytes | memoryview]]] = {key: [] for key in plans}
    counts: dict[str, dict[int, int]] = {key: {} for key in plans}
    wanted = Q()
    for key, (first, _) in plans.items():
        if key in last_chunks and last_chunks[key][0] == first:  # the only chunk wanted, read already
            last, last_data, last_count = last_chunks[key]
            rows[key].append((last, last_data))
            counts[key][last] = last_count
        else:
            wanted |= Q(key=key, chunk__gte=first)
    if wanted:
        stored = MetricRollup.objects.filter(wanted, run_id=run_id).values_list("key", "chunk", "buckets", "count")
        for key, chunk, data, count in stored:
            rows[key].append((chunk, data))
            counts[key][chunk] = count
    tails = {}
    for key, (first, factor) in plans.items():
        summary = growing[key][0]
        if counts[key] and counts[key][max(counts[key])] == summary.count:
            joined = rollup.joined(rows[key], first, summary.count, summary.last_step)
            if joined is not None:
                tails[key] = (first, rollup.widen(joined, factor))
    return tails


def _states_store(run_id: int, states: dict[str, _KeyState]) -> None:
    """Upsert the summaries and rollup chunks; a rollup stored from chunk 0 loses the chunks past its new end."""
    size = rollup.CHUNK_BUCKETS
    if connection.vendor == "postgresql":
        chunks = [(key, s.start + offset // size, rollup.encode(s.buckets[offset : offset + size]), s.count)
                  for key, s in states.items() for offset in range(0, len(s.buckets), size)]
        metrics_pg.states_store(
            run_id,
            [list(column) for column in zip(*[(key, s.last, s.last_step, s.min, s.max, s.count) for key, s in states.items()],
                                            strict=True)] or [[]] * 6,
            [list(column) for column in zip(*[(key, -(-len(s.buckets) // size)) for key, s in states.items() if s.start == 0],
                                            strict=True)] or [[], []],
            [list(column) for column in zip(*chunks, strict=True)] or [[]] * 4,
        )
        return
    MetricSummary.objects.bulk_create(
        [MetricSummary(run_id=run_id, key=key, last=s.last, last_step=s.last_step, min=s.min, max=s.max, count=s.count)
         for key, s in states.items()],
        update_conflicts=True, unique_fields=["run", "key"], update_fields=["last", "last_step", "min", "max", "count"],
    )
    whole = Q()
    for key, state in states.items():
        if state.start == 0:
            whole |= Q(key=key, chunk__gte=-(-len(state.buckets) // size))
    if whole:
        MetricRollup.objects.filter(whole, run_id=run_id).delete()
    MetricRollup.objects.bulk_create(
        [MetricRollup(run_id=run_id, key=key, chunk=s.start + offset // size, count=s.count,
                      buckets=rollup.encode(s.buckets[offset : offset + size]))
         for key, s in states.items() for offset in range(0, len(s.buckets), size)],
        update_conflicts=True, unique_fields=["run", "key", "chunk"], update_fields=["buckets", "count"],
    )


def metric_rollups_rebuild(*, run_id: int, keys: Iterable[str] | None = None) -> int:
    """Rebuild the summaries and rollups of a run's keys (every key when None) from the stored points; returns how many.

    A key given that has no stored point left loses its summary and rollup.
    """
    with transaction.atomic():
        Run.objects.select_for_update().filter(id=run_id).values_list("id", flat=True).get()
        chosen = Metric.objects.filter(run_id=run_id)
        if keys is not None:
            keys = list(keys)
            chosen = chosen.filter(key__in=keys)
        names = list(chosen.values_list("key", flat=True).distinct())
        if keys is not None and (empty := set(keys) - set(names)):
            MetricSummary.objects.filter(run_id=run_id, key__in=empty).delete()
            MetricRollup.objects.filter(run_id=run_id, key__in=empty).delete()
        _states_store(run_id, {key: _state_of(_stored_points(run_id, key)) for key in names})
    return len(names)


def _stored_points(run_id: int, key: str) -> KeyPoints:
    """Every stored point of (run, key) in step order."""
    rows = list(Metric.objects.filter(run_id=run_id, key=key).order_by("step").values_list("step", "value", "wall_time"))
    return KeyPoints(
        np.array([row[0] for row in rows], np.int64), np.array([row[1] for row in rows], np.float64),
        np.array([row[2] for row in rows], np.float64),
    )


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


def logs_append_next(*, run_id: int, lines: Iterable[tuple[int, str, str]]) -> int:
    """Store log lines after the run's last one, whatever seq they came with (the nodes of a multi-node
    run write one log; the run's row lock orders them). Returns lines stored."""
    with transaction.atomic():
        Run.objects.select_for_update().filter(id=run_id).values_list("id").first()
        last = LogLine.objects.filter(run_id=run_id).aggregate(m=Max("seq"))["m"]
        start = 0 if last is None else last + 1
        return logs_append(run_id=run_id, lines=[(start + i, stream, text) for i, (_, stream, text) in enumerate(lines)])


def artifact_store(*, run_id: int, name: str, kind: str, file: File, step: int | None = None,
                   metadata: dict | None = None) -> Artifact:
    """Copy a file into artifact storage under the run, with its size and SHA-256; same name replaces."""
    if not _safe_artifact_name(name):
        raise ResultError(f"artifact name {name[:300]!r} must be a relative path with / between its parts "
                          "(no \\, no empty, . or .. parts, no control characters, at most 255 characters)")
    digest = hashlib.sha256()
    size = 0
    for chunk in file.chunks():
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    path = default_storage.save(f"runs/{run_id}/{kind}s/{name}", file)
    try:
        with transaction.atomic():
            old = Artifact.objects.filter(run_id=run_id, name=name).first()
            if old:
                old.delete()
                if old.storage_path != path:  # the replaced file goes only once its row's removal is committed
                    transaction.on_commit(functools.partial(_storage_delete, old.storage_path))
            return Artifact.objects.create(
                run_id=run_id, name=name, kind=kind, step=step, size=size, sha256=digest.hexdigest(), storage_path=path,
                metadata=metadata or {},
            )
    except BaseException:
        _storage_delete(path)  # no row points at it: a failed store leaves no orphan file
        raise


def artifacts_delete(*, run_id: int, path: str) -> int:
    """Delete the run's artifact named `path`, or every artifact under the folder `path`; returns how many.

    The files go once the rows' removal is committed.
    """
    path = path.strip("/")
    chosen = Artifact.objects.filter(run_id=run_id)
    if path:
        chosen = chosen.filter(Q(name=path) | Q(name__startswith=f"{path}/"))
    with transaction.atomic():
        paths = list(chosen.values_list("storage_path", flat=True))
        chosen.delete()
        for stored in paths:
            transaction.on_commit(functools.partial(_storage_delete, stored))
    return len(paths)


def _safe_artifact_name(name: str) -> bool:
    """A name every storage reads the same way: POSIX parts, none empty or a way up, not hidden at the top."""
    if not 0 < len(name) <= 255 or name.startswith(".") or "\\" in name or any(ord(c) < 32 for c in name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _storage_delete(path: str) -> None:
    try:
        default_storage.delete(path)
    except Exception:  # a file left behind costs space, never data; say so and go on
        log.exception("could not delete %s from artifact storage", path)
