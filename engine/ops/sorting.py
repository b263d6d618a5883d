"""Sorting: sort, argsort, topk, msort. Values are gathered, so their gradient flows to the inputs
they came from."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.ops.complex import no_complex
from engine.ops.indexing import gather
from engine.ops.reduction import normalize_dim
from engine.tensor import wrap

SortResult = namedtuple("sort", ["values", "indices"])
TopkResult = namedtuple("topk", ["values", "indices"])


def _sorted_indices(data, dim: int, descending: bool, xp):
    """Stable argsort along ``dim``; descending keeps equal elements in their original order."""
    if not descending:
        return xp.argsort(data, axis=dim, kind="stable")
    n = data.shape[dim]
    reversed_order = xp.argsort(xp.flip(data, dim), axis=dim, kind="stable")
    return (n - 1) - xp.flip(reversed_order, dim)


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    no_complex(input, "argsort")
    if input._data.ndim == 0:
        return wrap(np.zeros((), np.int64), input._device)
    dim = normalize_dim(dim, input._data.ndim)
    indices = _sorted_indices(input._data, dim, descending, input._device.xp)
    return wrap(indices.astype(np.int64, copy=False), input._device)


def sort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along ``dim``."""
    no_complex(input, "sort")
    if input._data.ndim == 0:
        return SortResult(input.clone(), wrap(np.zeros((), np.int64), input._device))
    indices = argsort(input, dim, descending)
    return SortResult(gather(input, dim, indices), indices)


def msort(input):
    return sort(input, 0).values


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices."""
    no_complex(input, "topk")
    if input._data.ndim == 0:
        if k > 1:
            raise RuntimeError("selected index k out of range")
        return TopkResult(input.clone(), wrap(np.zeros((), np.int64), input._device))
    dim = normalize_dim(dim, input._data.ndim)
    size = input._data.shape[dim]
    if not 0 <= k <= size:
        raise RuntimeError(f"selected index k out of range (k={k}, size {size} at dim {dim})")
    order = _sorted_indices(input._data, dim, largest, input._device.xp)
    index = [slice(None)] * input._data.ndim
    index[dim] = slice(0, k)
    indices = wrap(order[tuple(index)].astype(np.int64), input._device)
    return TopkResult(gather(input, dim, indices), indices)


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):
    from engine.ops.reduction import MinResult

    values, indices = sort(input, dim)
    dim = normalize_dim(dim, input._data.ndim)
    v = values.narrow(dim, k - 1, 1)
    i = indices.narrow(dim, k - 1, 1)
    if not keepdim:
        v, i = v.squeeze(dim), i.squeeze(dim)
    return MinResult(v, i)
