"""The min/max rollup of a metric series: a bounded summary kept up to date as points arrive.

The n points of a series (in step order) are cut into buckets of `width_for(n)` consecutive
points, the smallest power of two that leaves at most MAX_BUCKETS buckets. A bucket keeps four
points: its first, its min, its max and its last (the rule of `downsample.bucket_extremes`, so
every spike survives). The rollup depends only on the points, never on how they were batched:
doubling the width merges neighbouring buckets, which is what building at the new width gives.
A chart draws the rollup (at most 4 * MAX_BUCKETS points) through `minmax_indices`, never the raw points.

Example:
    >>> b = build(np.arange(6), np.array([3.0, 1, 2, 9, 5, 4]), np.zeros(6), 4)
    >>> points(b)[0].tolist()
    [0, 1, 3, 4, 5]
"""

from __future__ import annotations

import numpy as np

from webapp.experiments.downsample import bucket_extremes

MAX_BUCKETS = 1024  # 512 to 1024 buckets of a long series: enough for 1000 drawn points
CHUNK_BUCKETS = 64  # buckets per stored row: appending rewrites only the last row (<= 6 KiB)
FIRST, LOW, HIGH, LAST = range(4)
BUCKET = np.dtype([("step", "<i8", 4), ("value", "<f8", 4), ("wall", "<f8", 4)])  # 96 bytes


def width_for(count: int) -> int:
    """Points per bucket of a series of `count` points."""
    width = 1
    while -(-count // width) > MAX_BUCKETS:
        width *= 2
    return width


def build(steps: np.ndarray, values: np.ndarray, walls: np.ndarray, width: int) -> np.ndarray:
    """The buckets of points given in step order, the first bucket starting at the first point."""
    n = len(steps)
    starts = np.arange(0, n, width)
    low, high = bucket_extremes(values, width)
    picked = np.stack([starts, low, high, np.minimum(starts + width, n) - 1], axis=1)
    out = np.empty(len(starts), BUCKET)
    out["step"], out["value"], out["wall"] = steps[picked], values[picked], walls[picked]
    return out


def merge(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each bucket of `left` joined with the bucket of `right` that follows it (same length)."""
    out = left.copy()
    out["step"][:, LAST], out["value"][:, LAST], out["wall"][:, LAST] = (
        right["step"][:, LAST], right["value"][:, LAST], right["wall"][:, LAST]
    )
    lv, rv = left["value"], right["value"]
    # NOTE: NaN loses and ties keep the earlier point, as `bucket_extremes` does over raw points.
    take = {
        LOW: np.where(np.isnan(rv[:, LOW]), np.inf, rv[:, LOW]) < np.where(np.isnan(lv[:, LOW]), np.inf, lv[:, LOW]),
        HIGH: np.where(np.isnan(rv[:, HIGH]), -np.inf, rv[:, HIGH]) > np.where(np.isnan(lv[:, HIGH]), -np.inf, lv[:, HIGH]),
    }
    for column, mask in take.items():
        for field in ("step", "value", "wall"):
            out[field][mask, column] = right[field][mask, column]
    return out


def widen(buckets: np.ndarray, factor: int) -> np.ndarray:
    """All buckets of a series (from its first) at `factor` (a power of two) times their width."""
    while factor > 1:
        even = len(buckets) // 2 * 2
        buckets = np.concatenate([merge(buckets[0:even:2], buckets[1:even:2]), buckets[even:]])
        factor //= 2
    return buckets


def extend(tail: np.ndarray, count: int, steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """`tail` (the last buckets of a series of `count` points, at least one) with points after them appended.

    The new points are in step order; `tail` is already at the width of the longer series (`widen`
    all buckets first when it grows). Returns the buckets from `tail[0]` on.
    """
    width = width_for(count + len(steps))
    parts = [tail]
    room = -count % width  # free places in the last bucket
    if room and len(steps):
        head = build(steps[:room], values[:room], walls[:room], width)
        parts = [tail[:-1], merge(tail[-1:], head)]
        steps, values, walls = steps[room:], values[room:], walls[room:]
    if len(steps):
        parts.append(build(steps, values, walls, width))
    return np.concatenate(parts)


def points(buckets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct points the buckets keep, in step order: (steps, values, walls)."""
    order = np.argsort(buckets["step"], axis=1, kind="stable")
    steps = np.take_along_axis(buckets["step"], order, axis=1).ravel()
    keep = np.ones(len(steps), bool)
    keep[1:] = steps[1:] != steps[:-1]
    values = np.take_along_axis(buckets["value"], order, axis=1).ravel()
    walls = np.take_along_axis(buckets["wall"], order, axis=1).ravel()
    return steps[keep], values[keep], walls[keep]


def encode(buckets: np.ndarray) -> bytes:
    return buckets.tobytes()


def decode(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(data, BUCKET)


def joined(rows: list[tuple[int, bytes | memoryview]], first: int, count: int, last_step: int | None = None) -> np.ndarray | None:
    """The buckets of stored (chunk, data) rows from chunk `first` on, of a rollup of `count` points
    (ending at `last_step` when given); None when the rows do not make exactly that (a stale rollup)."""
    rows = sorted(rows)
    if not rows or [chunk for chunk, _ in rows] != list(range(first, first + len(rows))):
        return None
    buckets = np.concatenate([decode(data) for _, data in rows])
    if len(buckets) != -(-count // width_for(count)) - first * CHUNK_BUCKETS:
        return None
    if last_step is not None and buckets["step"][-1, LAST] != last_step:
        return None
    return buckets
