"""The compare data endpoint's answer: compact JSON arrays per (run, key), rounded, bounded in size.

One series: `{"run", "key", "dstep": [...], "y": [...], "raw", "sampled"}` plus, by x-axis,
`"t0"` and `"t"` (seconds after t0: wall time and relative time) or `"x"` (another metric joined
on step). Modes: overview (default), zoom (`lo`/`hi` step range) and live tail (`after=run:step,...`).
`"pending"` lists runs whose long series were not read yet within this request's time (the first
look at very long runs): the page asks again for those runs.

Compact on the wire: `dstep` holds the steps as differences (the first from 0; a running sum gives
them back), small numbers that take few characters and gzip well; one request carries every key of
a view, each chart's runs sharing RESPONSE_BUDGET points (webapp.dashboards.series).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from django.http import QueryDict

from webapp.dashboards import series as store
from webapp.dashboards.state import CompareState, StateError
from webapp.experiments.downsample import round_significant
from webapp.experiments.models import Run
from webapp.ids import parse_id, parse_int

VALUE_DIGITS = 6
COLD_READ_SECONDS = 2.0  # reading uncached series stops after this; the page asks again for the rest


@dataclass(frozen=True)
class SeriesQuery:
    keys: tuple[str, ...]
    x: str = "step"
    lo: int | None = None
    hi: int | None = None
    after: dict[int, int] | None = None
    points: int | None = None

    @property
    def x_metric(self) -> str | None:
        return self.x.removeprefix("metric:") if self.x.startswith("metric:") else None


def series_query(query: QueryDict, state: CompareState, keys: list[str]) -> SeriesQuery:
    """The data request in `query` (keys default to `keys`); raises StateError naming a bad parameter."""
    chosen = state.keys or tuple(keys)
    after = _after(query.get("after"))
    if after is not None and len(chosen) != 1:
        raise StateError("after (live updates) takes exactly one key")
    lo, hi = _int(query.get("lo"), "lo"), _int(query.get("hi"), "hi")
    if lo is not None and hi is not None and lo > hi:
        raise StateError("lo must not be above hi")
    points = _int(query.get("points"), "points")
    if points is not None and points < 10:
        raise StateError("points must be at least 10")
    return SeriesQuery(keys=chosen, x=state.x, lo=lo, hi=hi, after=after, points=points)


def series_data(runs: list[Run], request: SeriesQuery) -> dict:
    """Everything the charts of `request.keys` need for `runs`, as plain JSON-ready data."""
    run_ids = [run.id for run in runs]
    refs = store.series_refs(run_ids, request.keys)
    refs.sort(key=lambda ref: (request.keys.index(ref.key), run_ids.index(ref.run_id)))
    budget = store.per_series_budget(_most_per_key(refs), request.points)
    x_key = request.x_metric
    x_refs = {ref.run_id: ref for ref in store.series_refs(run_ids, [x_key])} if x_key else {}
    fetch_overview = [ref for ref in refs if request.after is None or ref.run_id not in request.after]
    wanted = set(fetch_overview)
    deadline = time.monotonic() + COLD_READ_SECONDS
    overview = store.overviews(list(x_refs.values()) + fetch_overview, budget=store.SERIES_BUDGET, deadline=deadline)
    out, pending = [], []
    for ref in refs:
        x_ref = x_refs.get(ref.run_id)
        missing = (ref in wanted and (ref.run_id, ref.key) not in overview) or (
            x_ref is not None and (x_ref.run_id, x_ref.key) not in overview
        )
        if missing:
            pending.append(ref.run_id)
            continue
        if request.after is not None and ref.run_id in request.after:
            points = store.tail(ref, after=request.after[ref.run_id], budget=budget)
        elif request.lo is not None or request.hi is not None:
            points = store.zoomed(ref, overview[(ref.run_id, ref.key)], lo=request.lo, hi=request.hi, budget=budget)
        else:
            points = overview[(ref.run_id, ref.key)].take(budget)
        out.append(_encode(ref, points, request, overview, x_refs))
    return {
        "keys": list(request.keys),
        "x": request.x,
        "budget": budget,
        "final": all(run.is_final for run in runs),
        "series": out,
        "pending": sorted(set(pending)),  # runs whose series were not read yet: ask again for these
    }


def _encode(
    ref: store.SeriesRef, points: store.Series, request: SeriesQuery,
    overview: dict[tuple[int, str], store.Series], x_refs: dict[int, store.SeriesRef],
) -> dict:
    item: dict = {
        "run": ref.run_id, "key": ref.key, "dstep": np.diff(points.steps, prepend=0).tolist(), "y": _floats(points.values),
        "raw": points.raw_count, "sampled": points.sampled, "last_step": ref.last_step,
    }
    if request.x in ("wall", "rel") and len(points.steps):
        t0 = float(points.walls[0])
        item["t0"] = t0
        item["t"] = np.round(points.walls - t0, 3).tolist()
    x_key = request.x_metric
    if x_key:
        x_ref = x_refs.get(ref.run_id)
        if x_ref is None:
            by = store.EMPTY
        elif request.after is None and request.lo is None and request.hi is None:
            by = overview[(x_ref.run_id, x_ref.key)]
        else:
            by = _exact_x(x_ref, points)
        item["x"] = _floats(store.join_on_step(points.steps, by))
    return item


def _most_per_key(refs: list[store.SeriesRef]) -> int:
    """The most series one chart (one key) of the response draws."""
    per_key: dict[str, int] = {}
    for ref in refs:
        per_key[ref.key] = per_key.get(ref.key, 0) + 1
    return max(per_key.values(), default=0)


def _exact_x(x_ref: store.SeriesRef, points: store.Series) -> store.Series:
    """The x metric's raw points covering `points` (from its last point at or before the first step)."""
    if not len(points.steps):
        return store.EMPTY
    first, last = int(points.steps[0]), int(points.steps[-1])
    before = store.point_at_or_before(x_ref.run_id, x_ref.key, first)
    inside = store.read_points(x_ref.run_id, x_ref.key, lo=first + 1, hi=last)
    return store.Series(
        np.concatenate([before.steps, inside.steps]), np.concatenate([before.values, inside.values]),
        np.concatenate([before.walls, inside.walls]), before.raw_count + inside.raw_count,
    )


def _floats(values: np.ndarray) -> list[float | None]:
    rounded = round_significant(values, VALUE_DIGITS)
    if np.isfinite(rounded).all():
        return rounded.tolist()
    return [v if math.isfinite(v) else None for v in rounded.tolist()]


def _int(raw: str | None, name: str) -> int | None:
    if raw in (None, ""):
        return None
    value = parse_int(raw)
    if value is None:
        raise StateError(f"{name} must be a whole number")
    return value


def _after(raw: str | None) -> dict[int, int] | None:
    if raw is None:
        return None
    after: dict[int, int] = {}
    for item in filter(None, raw.split(",")):
        run, _, step = item.partition(":")
        run_id, last = parse_id(run), parse_int(step)
        if run_id is None or last is None:
            raise StateError("after must be run:step pairs separated by commas, e.g. after=3:1200,4:1180")
        after[run_id] = last
    return after
