"""Deterministic downsampling of long metric series that keeps every spike.

Min/max buckets: the series is cut into equal runs of consecutive points and each bucket
keeps the positions of its smallest and its largest value (in their original order), so a
single-step spike survives any reduction. The first and last points are always kept.
"""

from __future__ import annotations

import numpy as np

MIN_BUDGET = 4


def minmax_indices(values: np.ndarray, budget: int) -> np.ndarray:
    """Sorted indices of at most `budget` points of `values` to draw in place of all of them.

    Below the budget every index is returned. NaN never wins a bucket unless the whole bucket
    is NaN (then the bucket shows as a gap).

    Example:
        >>> minmax_indices(np.array([0.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 6).tolist()
        [0, 1, 4, 7]
    """
    n = len(values)
    budget = max(int(budget), MIN_BUDGET)
    if n <= budget:
        return np.arange(n)
    buckets = (budget - 2) // 2
    width = -(-n // buckets)  # ceil division: every bucket but the last holds `width` points
    low, high = bucket_extremes(values, width)
    return np.unique(np.concatenate([[0, n - 1], low, high]))


def bucket_extremes(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For each bucket of `width` consecutive values (the last may be short), the index of its min and of its max.

    NaN loses to every number (a bucket of NaN only gives its first index); ties go to the earlier point.
    The rollup of stored series (`webapp.experiments.rollup`) applies the same rule.
    """
    n = len(values)
    rows = -(-n // width)
    pad = rows * width - n
    nan = np.isnan(values)
    low = np.concatenate([np.where(nan, np.inf, values), np.full(pad, np.inf)]).reshape(rows, width)
    high = np.concatenate([np.where(nan, -np.inf, values), np.full(pad, -np.inf)]).reshape(rows, width)
    offsets = np.arange(rows) * width
    return np.minimum(offsets + low.argmin(axis=1), n - 1), np.minimum(offsets + high.argmax(axis=1), n - 1)


def round_significant(values: np.ndarray, digits: int = 6) -> np.ndarray:
    """`values` rounded to `digits` significant digits, so they print short in JSON.

    # NOTE: dividing (or multiplying) a rounded integer by an exact power of ten gives the double
    # nearest the decimal, whose shortest repr is that decimal: 0.123457, not 0.12345700000000001.
    """
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    ok = np.isfinite(values) & (values != 0)
    if not ok.any():
        return out
    exponent = (digits - 1 - np.floor(np.log10(np.abs(values[ok])))).astype(np.int64)
    exponent = np.clip(exponent, -300, 300)
    v = values[ok]
    up = exponent >= 0
    result = np.empty_like(v)
    scale = 10.0 ** np.minimum(exponent[up], 22)
    result[up] = np.round(v[up] * scale) / scale
    scale = 10.0 ** (-exponent[~up])
    result[~up] = np.round(v[~up] / scale) * scale
    # beyond 22 decimals a power of ten is not exact; those tiny values keep their own digits
    tiny = up.copy()
    tiny[up] = exponent[up] > 22
    result[tiny] = v[tiny]
    out[ok] = result
    return out
