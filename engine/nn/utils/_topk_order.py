"""Which ``k`` entries PyTorch's CPU ``topk`` picks, ties included, so pruning masks match PyTorch's.

PyTorch's CPU kernel (ATen ``TopKImpl.h``) selects with ``std::partial_sort`` when ``k * 64 <= n`` and
``std::nth_element`` otherwise; among equal values the winners are whatever libstdc++'s introselect or
heap select leave in front. This module replays those algorithms on (value, index) pairs.
"""

from __future__ import annotations

import math

import numpy as np


def topk_indices(values: np.ndarray, k: int, largest: bool) -> np.ndarray:
    """Indices of the ``k`` entries PyTorch's CPU ``topk(values, k, largest=largest)`` returns (as a set)."""
    vals = [float(v) for v in np.asarray(values).reshape(-1)]
    n = len(vals)
    if largest:
        def less(a: int, b: int) -> bool:  # "a goes before b"
            x, y = vals[a], vals[b]
            return (math.isnan(x) and not math.isnan(y)) or x > y
    else:
        def less(a: int, b: int) -> bool:
            x, y = vals[a], vals[b]
            return (not math.isnan(x) and math.isnan(y)) or x < y
    queue = list(range(n))
    if k * 64 <= n:
        _heap_select(queue, 0, k, n, less)
    elif k > 0:
        _introselect(queue, 0, k - 1, n, 2 * (n.bit_length() - 1), less)
    return np.asarray(queue[:k], dtype=np.int64)


def _introselect(q, first, nth, last, depth, less) -> None:
    while last - first > 3:
        if depth == 0:
            _heap_select(q, first, nth + 1, last, less)
            q[first], q[nth] = q[nth], q[first]
            return
        depth -= 1
        cut = _partition_pivot(q, first, last, less)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(q, first, last, less)


def _partition_pivot(q, first, last, less) -> int:
    mid = first + (last - first) // 2
    _move_median_to_first(q, first, first + 1, mid, last - 1, less)
    lo, hi, pivot = first + 1, last, first
    while True:
        while less(q[lo], q[pivot]):
            lo += 1
        hi -= 1
        while less(q[pivot], q[hi]):
            hi -= 1
        if not lo < hi:
            return lo
        q[lo], q[hi] = q[hi], q[lo]
        lo += 1


def _move_median_to_first(q, result, a, b, c, less) -> None:
    if less(q[a], q[b]):
        pick = b if less(q[b], q[c]) else (c if less(q[a], q[c]) else a)
    elif less(q[a], q[c]):
        pick = a
    else:
        pick = c if less(q[b], q[c]) else b
    q[result], q[pick] = q[pick], q[result]


def _insertion_sort(q, first, last, less) -> None:
    for i in range(first + 1, last):
        val = q[i]
        if less(val, q[first]):
            q[first + 1:i + 1] = q[first:i]
            q[first] = val
        else:
            j = i
            while less(val, q[j - 1]):
                q[j] = q[j - 1]
                j -= 1
            q[j] = val


def _heap_select(q, first, middle, last, less) -> None:
    length = middle - first
    if length >= 2:  # make_heap
        parent = (length - 2) // 2
        while True:
            _adjust_heap(q, first, parent, length, q[first + parent], less)
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, last):
        if less(q[i], q[first]):  # pop_heap(first, middle, i)
            value = q[i]
            q[i] = q[first]
            _adjust_heap(q, first, 0, length, value, less)


def _adjust_heap(q, first, hole, length, value, less) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if less(q[first + child], q[first + child - 1]):
            child -= 1
        q[first + hole] = q[first + child]
        hole = child
    if length & 1 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        q[first + hole] = q[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and less(q[first + parent], value):
        q[first + hole] = q[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    q[first + hole] = value
