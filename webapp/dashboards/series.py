"""Reading metric series for charts: overviews, zoomed ranges, live tails.

An overview (the whole series in at most `budget` points) comes from the series' rollup
(`webapp.experiments.rollup`, kept by `metrics_log` with the points): one query for all the
series of a page reads at most MAX_BUCKETS buckets each, however long or live the runs, and the
one min/max rule thins them to the budget. Live tails and narrow zooms read their range of raw
points (one indexed query per (run, key) in step order, numpy for the rest); a wide zoom reads the
rollup's buckets inside its range and the raw points at its two ends. A series stored before
rollups existed is read whole instead, its overview cached under (run, key, count, last_step, the
run's creation time and the summary's values), which changes with every stored point.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache

from webapp.experiments import rollup
from webapp.experiments.downsample import minmax_indices
from webapp.experiments.models import Metric, MetricSummary
from webapp.experiments.results import metric_rollups_rebuild
from webapp.experiments.selectors import stored_rollups

SERIES_BUDGET = 1000  # points per drawn series: min and max for each pixel column of a ~500 px chart
RESPONSE_BUDGET = 100_000  # points of one chart (one key) in a response, across its runs
CACHE_SECONDS = 7 * 24 * 3600
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Series:
    """Points of one (run, key), in step order; `raw_count` is how many the data held.

    An overview drawn from a rollup keeps its `buckets` (the whole rollup), for zooms to reuse.
    """

    steps: np.ndarray
    values: np.ndarray
    walls: np.ndarray
    raw_count: int
    buckets: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def sampled(self) -> bool:
        return len(self.steps) < self.raw_count

    def take(self, budget: int) -> Series:
        """At most `budget` of these points, spikes kept; the same data gives the same points."""
        if len(self.steps) <= budget:
            return self
        keep = minmax_indices(self.values, budget)
        return Series(self.steps[keep], self.values[keep], self.walls[keep], self.raw_count, self.buckets)

    def within(self, lo: int | None, hi: int | None) -> Series:
        """The points in [lo, hi] of a full-resolution series."""
        start = 0 if lo is None else int(np.searchsorted(self.steps, lo, side="left"))
        stop = len(self.steps) if hi is None else int(np.searchsorted(self.steps, hi, side="right"))
        return Series(self.steps[start:stop], self.values[start:stop], self.walls[start:stop], stop - start)


@dataclass(frozen=True)
class SeriesRef:
    """What the summary table knows of a series: enough to name its cache entry."""

    run_id: int
    key: str
    count: int
    last_step: int
    fingerprint: str = ""  # the run's creation time and the summary's values: a reused run id never hits


EMPTY = Series(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), 0)


def per_series_budget(series_count: int, requested: int | None = None) -> int:
    """Points per series so that a chart of `series_count` runs stays within RESPONSE_BUDGET."""
    budget = min(requested or SERIES_BUDGET, SERIES_BUDGET)
    return max(50, min(budget, RESPONSE_BUDGET // max(series_count, 1)))


def series_refs(run_ids: Iterable[int], keys: Iterable[str] | None = None) -> list[SeriesRef]:
    """One reference per stored (run, key) among `run_ids` and `keys` (every key when None)."""
    summaries = MetricSummary.objects.filter(run_id__in=list(run_ids))
    if keys is not None:
        summaries = summaries.filter(key__in=list(keys))
    rows = summaries.values_list("run_id", "key", "count", "last_step", "last", "min", "max", "run__created_at")
    return [
        SeriesRef(run_id, key, count, last_step, f"{created.timestamp()!r}:{last!r}:{low!r}:{high!r}")
        for run_id, key, count, last_step, last, low, high, created in rows
    ]


def read_points(
    run_id: int, key: str, *, lo: int | None = None, hi: int | None = None, after: int | None = None
) -> Series:
    """Every stored point of (run, key) in the step range, at full resolution."""
    points = Metric.objects.filter(run_id=run_id, key=key)
    if lo is not None:
        points = points.filter(step__gte=lo)
    if hi is not None:
        points = points.filter(step__lte=hi)
    if after is not None:
        points = points.filter(step__gt=after)
    rows = list(points.order_by("step").values_list("step", "value", "wall_time"))
    if not rows:
        return EMPTY
    table = np.array(rows, dtype=np.float64)
    steps = np.array([row[0] for row in rows], dtype=np.int64) if table[-1, 0] > 2**53 else table[:, 0].astype(np.int64)
    return Series(steps, table[:, 1], table[:, 2], len(rows))


def point_at_or_before(run_id: int, key: str, step: int) -> Series:
    """The latest point of (run, key) at or before `step`, if there is one."""
    row = (
        Metric.objects.filter(run_id=run_id, key=key, step__lte=step)
        .order_by("-step").values_list("step", "value", "wall_time").first()
    )
    if row is None:
        return EMPTY
    return Series(np.array([row[0]], np.int64), np.array([row[1]]), np.array([row[2]]), 1)


def overviews(
    refs: list[SeriesRef], budget: int = SERIES_BUDGET, *, deadline: float | None = None
) -> dict[tuple[int, str], Series]:
    """The whole of each series, downsampled to `budget` points from its rollup (one query for all).

    A series without a usable rollup (stored before rollups existed) is read point by point and
    its overview cached per (run, key, count, last_step); past `deadline` (a `time.monotonic()`
    value) the remaining ones are left out, so the caller asks again for the rest (at least one is read).
    """
    stored = _rollups(refs)
    result: dict[tuple[int, str], Series] = {}
    missing = []
    for ref in refs:
        found = stored.get((ref.run_id, ref.key))
        if found is None:
            missing.append(ref)
            continue
        count, buckets = found
        steps, values, walls = rollup.points(buckets)
        result[(ref.run_id, ref.key)] = Series(steps, values, walls, count, buckets).take(budget)
    if missing:
        result.update(_overviews_from_points(missing, budget, deadline))
    return result


def _rollups(refs: list[SeriesRef]) -> dict[tuple[int, str], tuple[int, np.ndarray]]:
    """(points covered, buckets) of each series' stored rollup, where it has a whole one."""
    return stored_rollups((ref.run_id, ref.key) for ref in refs)


def _overviews_from_points(
    refs: list[SeriesRef], budget: int, deadline: float | None
) -> dict[tuple[int, str], Series]:
    names = {ref: _cache_name(ref) for ref in refs}
    found = cache.get_many(list(names.values()))
    result: dict[tuple[int, str], Series] = {}
    read_any = False
    for ref, name in names.items():
        packed = found.get(name)
        if packed is None:
            if read_any and deadline is not None and time.monotonic() > deadline:
                continue
            series = read_points(ref.run_id, ref.key).take(SERIES_BUDGET)
            cache.set(name, _pack(series), timeout=CACHE_SECONDS)
            read_any = True
        else:
            series = _unpack(packed)
        result[(ref.run_id, ref.key)] = series.take(budget)
    return result


def series_cache_warm(*, run_id: int) -> int:
    """Make sure every metric of a run has its rollup (e.g. when it finishes); returns how many were rebuilt."""
    refs = series_refs([run_id])
    rolled = _rollups(refs)
    stale = [ref.key for ref in refs if (ref.run_id, ref.key) not in rolled]
    return metric_rollups_rebuild(run_id=run_id, keys=stale) if stale else 0


def zoomed(ref: SeriesRef, overview: Series, *, lo: int | None, hi: int | None, budget: int) -> Series:
    """The points of one series in [lo, hi]: raw when they fit the budget, else downsampled within the range."""
    if not overview.sampled:
        return overview.within(lo, hi).take(budget)
    if len(overview.steps) and (lo is None or lo <= overview.steps[0]) and (hi is None or hi >= overview.steps[-1]):
        return overview.take(budget)
    wide = _zoomed_rollup(ref, overview, lo, hi, budget)
    return wide if wide is not None else read_points(ref.run_id, ref.key, lo=lo, hi=hi).take(budget)


def _zoomed_rollup(ref: SeriesRef, overview: Series, lo: int | None, hi: int | None, budget: int) -> Series | None:
    """[lo, hi] from the overview's rollup buckets inside it plus the raw points at its two ends (each within a bucket).

    None when the range holds fewer than budget / 8 whole buckets: then its raw points are few enough to read.
    """
    if overview.buckets is None:
        return None
    count, buckets = overview.raw_count, overview.buckets
    firsts, lasts = buckets["step"][:, rollup.FIRST], buckets["step"][:, rollup.LAST]
    start = 0 if lo is None else int(np.searchsorted(firsts, lo, side="left"))
    stop = len(buckets) if hi is None else int(np.searchsorted(lasts, hi, side="right"))
    if stop - start < budget // 8:
        return None
    width = rollup.width_for(count)
    inside = (stop - start) * width - (len(buckets) * width - count if stop == len(buckets) else 0)
    left = read_points(ref.run_id, ref.key, lo=lo, hi=int(firsts[start]) - 1) if start else EMPTY
    right = read_points(ref.run_id, ref.key, lo=int(lasts[stop - 1]) + 1, hi=hi) if stop < len(buckets) else EMPTY
    steps, values, walls = rollup.points(buckets[start:stop])
    return Series(
        np.concatenate([left.steps, steps, right.steps]), np.concatenate([left.values, values, right.values]),
        np.concatenate([left.walls, walls, right.walls]), left.raw_count + inside + right.raw_count,
    ).take(budget)


def tail(ref: SeriesRef, *, after: int, budget: int) -> Series:
    """Points logged after step `after` (live updates), downsampled only if there are more than `budget`."""
    if ref.last_step <= after:
        return EMPTY
    return read_points(ref.run_id, ref.key, after=after).take(budget)


def join_on_step(steps: np.ndarray, by: Series) -> np.ndarray:
    """For each step, the value `by` held at that step (its latest point at or before it); NaN before its first."""
    if not len(by.steps):
        return np.full(len(steps), np.nan)
    at = np.searchsorted(by.steps, steps, side="right") - 1
    joined = by.values[np.clip(at, 0, None)]
    return np.where(at >= 0, joined, np.nan)


def _cache_name(ref: SeriesRef) -> str:
    identity = f"{ref.key}\0{ref.count}\0{ref.last_step}\0{ref.fingerprint}"
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()
    return f"kiln:series:{_CACHE_VERSION}:{ref.run_id}:{digest}"


def _pack(series: Series) -> tuple:
    return (series.steps.tobytes(), series.values.tobytes(), series.walls.tobytes(), series.raw_count)


def _unpack(packed: tuple) -> Series:
    steps, values, walls, raw_count = packed
    return Series(
        np.frombuffer(steps, dtype=np.int64), np.frombuffer(values, dtype=np.float64),
        np.frombuffer(walls, dtype=np.float64), raw_count,
    )
