"""Out-of-place index updates: index_add, index_copy, index_fill, index_put, index_reduce,
scatter_reduce, masked_scatter, take, put.

Most are expressed with the scatter/gather/index ops of ``indexing.py`` (so their gradients are those
ops'); ``scatter_reduce`` is one Function whose backward follows PyTorch's formulas.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.deterministic import alert_not_deterministic
from engine.dtypes import FLOAT, bool_, int64
from engine.ops.arithmetic import where
from engine.ops.indexing import (
    IndexAccumulate,
    IndexPut,
    _check_index,
    gather,
    getitem,
    masked_fill,
    normalize_index,
    scatter,
    scatter_add,
)
from engine.ops.reduction import normalize_dim
from engine.tensor import Tensor, wrap


def _check_index_vector(index, name: str):
    if not isinstance(index, Tensor) or index._dtype.name not in ("int64", "int32"):
        raise IndexError(f"{name}(): Expected dtype int32/int64 for index")
    if index._data.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector")


def _spread(index, dim: int, shape: tuple):
    """A 1-D ``index`` along ``dim`` expanded to ``shape`` (the full index scatter/gather take)."""
    view = [1] * len(shape)
    view[dim] = -1
    return index.reshape(-1).to(int64).reshape(view).expand(shape)


def _source_for(input, dim: int, index, source, name: str):
    _check_index_vector(index, name)
    dim = normalize_dim(dim, input._data.ndim)
    source = source if source._data.ndim else source.reshape(1)
    if source._data.ndim != max(input._data.ndim, 1) or source._data.shape[dim] != index._data.size:
        raise IndexError(f"{name}(): source has shape {tuple(source.shape)}, expected the shape of input with "
                         f"dim {dim} of size {index._data.size}")
    return dim, source.to(input._dtype)


def index_add(input, dim: int, index, source, *, alpha=1):
    """A copy of ``input`` with ``alpha * source`` added at ``index`` along ``dim`` (repeats accumulate)."""
    dim, source = _source_for(input, dim, index, source, "index_add")
    return scatter_add(input, dim, _spread(index, dim, tuple(source.shape)), source * alpha if alpha != 1 else source)


def index_copy(input, dim: int, index, source):
    """A copy of ``input`` with the slices of ``source`` written at ``index`` along ``dim``."""
    dim, source = _source_for(input, dim, index, source, "index_copy")
    return scatter(input, dim, _spread(index, dim, tuple(source.shape)), source)


def index_fill(input, dim: int, index, value):
    """A copy of ``input`` holding ``value`` in the slices at ``index`` along ``dim``."""
    _check_index_vector(index, "index_fill")
    dim = normalize_dim(dim, input._data.ndim)
    xp = input._device.xp
    size = input._data.shape[dim] if input._data.ndim else 1
    chosen = xp.zeros(size, dtype=bool)
    chosen[index._data.reshape(-1)] = True
    view = [1] * input._data.ndim
    if view:
        view[dim] = size
    return masked_fill(input, wrap(chosen.reshape(view), input._device), value)


def index_put(input, indices, values, accumulate=False):
    """A copy of ``input`` with ``values`` at ``input[indices]`` (added there when ``accumulate``)."""
    index, _ = normalize_index(tuple(indices), input._device)
    values = values.to(input._dtype) if isinstance(values, Tensor) else values
    if not accumulate:
        return IndexPut.apply(input, values, index)
    target = input._data[index].shape
    spread = values.expand(target) if isinstance(values, Tensor) else wrap(
        input._device.xp.full(target, values, input._dtype.np), input._device)
    return input + IndexAccumulate.apply(spread, input._data.shape, index)


def masked_scatter(input, mask, source):
    """A copy of ``input`` with ``source``'s leading elements written, in order, where ``mask`` is True."""
    if mask._dtype is not bool_:
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype {mask._dtype.name}")
    xp = input._device.xp
    full = xp.broadcast_to(mask._data, input._data.shape)
    count = int(full.sum())
    if count > source._data.size:
        raise RuntimeError("masked_scatter: expected source to have at least as many elements as ones in mask")
    order = xp.cumsum(full.reshape(-1)) - 1
    picks = wrap(xp.maximum(order, 0).reshape(input._data.shape).astype(int64.np), input._device)
    spread = getitem(source.reshape(-1).to(input._dtype), picks)
    return where(wrap(full, input._device), spread, input)


def take(input, index):
    """The elements of flattened ``input`` at ``index`` (shaped like ``index``)."""
    _check_index(index, "take")
    return getitem(input.reshape(-1), index)


def put(input, index, source, accumulate=False):
    """A copy of ``input`` with ``source`` written at flat positions ``index``."""
    _check_index(index, "put")
    flat = index_put(input.reshape(-1), (index.reshape(-1),), source.reshape(-1), accumulate)
    return flat.reshape(input.shape)


_REDUCES = ("sum", "prod", "mean", "amax", "amin")


class ScatterReduce(Function):
    """``input`` with ``src`` reduced into it at ``index`` along ``dim`` (PyTorch's scatter_reduce)."""

    @staticmethod
    def forward(ctx, input, dim, index, src, reduce, include_self):
        xp = input._device.xp
        full = _full_index(index._data, dim, xp)
        values = src._data[tuple(slice(0, s) for s in index._data.shape)]
        out = input._data.copy()
        count = xp.ones(out.shape, dtype=out.dtype) if include_self else xp.zeros(out.shape, dtype=out.dtype)
        touched = xp.zeros(out.shape, dtype=bool)
        touched[full] = True
        if not include_self:
            identity = {"sum": 0, "mean": 0, "prod": 1,
                        "amax": _lowest(input, xp), "amin": _highest(input, xp)}[reduce]
            out[touched] = identity
        ufunc = {"sum": xp.add, "mean": xp.add, "prod": xp.multiply, "amax": xp.maximum, "amin": xp.minimum}[reduce]
        if xp is not np and reduce in ("sum", "mean", "prod") and input._dtype.category == FLOAT:
            alert_not_deterministic(f"scatter_reduce (reduce={reduce!r}, atomic updates on the GPU)")
        ufunc.at(out, full, values)
        xp.add.at(count, full, 1)
        if reduce == "mean":
            safe = xp.where(count == 0, 1, count)
            out = (out / safe).astype(out.dtype) if input._dtype.category == FLOAT else out // safe
            out = xp.where(touched | include_self, out, input._data)
        ctx.meta = (dim, reduce, include_self)
        ctx.count = wrap(xp.maximum(count, 1), input._device)
        ctx.touched = wrap(touched, input._device)
        ctx.save_for_backward(input, index, src)
        ctx.result = wrap(out, input._device)
        return wrap(out, input._device)

    @staticmethod
    def backward(ctx, g):
        dim, reduce, include_self = ctx.meta
        input, index, src = ctx.saved_tensors
        touched = ctx.touched
        if reduce == "sum":
            grad_input = g if include_self else masked_fill(g, touched, 0.0)
            grad_src = gather(g, dim, index)
        elif reduce == "mean":
            scaled = g / ctx.count
            grad_input = scaled if include_self else masked_fill(g, touched, 0.0)
            grad_src = gather(scaled, dim, index)
        elif reduce == "prod":
            result = ctx.result
            if (input._data == 0).any() or (src._data == 0).any():
                raise NotImplementedError("scatter_reduce(reduce='prod') backward with zeros in input or src "
                                          "is not supported")
            grad_input = g * result / input if include_self else masked_fill(g, touched, 0.0)
            grad_src = gather(g * result, dim, index) / _crop(src, index)
        else:  # amax / amin: the gradient is shared evenly among the elements that attain the result
            result = ctx.result
            self_hits = (input == result).to(g.dtype) if include_self else wrap(
                input._device.xp.zeros(input._data.shape, dtype=g._dtype.np), input._device)
            src_hits = (_crop(src, index) == gather(result, dim, index)).to(g.dtype)
            ties = scatter_add(self_hits, dim, index, src_hits)
            share = g / ties.clamp(min=1)
            grad_input = where(touched, share * self_hits, g) if include_self else masked_fill(g, touched, 0.0)
            grad_src = gather(share, dim, index) * src_hits
        return grad_input, None, None, _pad_to(grad_src, src), None, None


def _crop(src, index):
    shape = index._data.shape
    return src if src._data.shape == shape else src[tuple(slice(0, s) for s in shape)]


def _pad_to(grad, src):
    if grad._data.shape == src._data.shape:
        return grad
    from engine.ops.indexing import embed_slice

    return embed_slice(grad, tuple(src._data.shape), tuple(slice(0, s) for s in grad._data.shape))


def _full_index(index_data, dim: int, xp):
    grids = list(xp.indices(index_data.shape, sparse=True))
    grids[dim] = index_data
    return tuple(grids)


def _lowest(input, xp):
    return -float("inf") if input._dtype.category == FLOAT else xp.iinfo(input._dtype.np).min


def _highest(input, xp):
    return float("inf") if input._dtype.category == FLOAT else xp.iinfo(input._dtype.np).max


def scatter_reduce(input, dim: int, index, src, reduce, *, include_self=True):
    """Reduce ``src`` into a copy of ``input`` at ``index`` along ``dim`` with sum/prod/mean/amax/amin."""
    if reduce not in _REDUCES:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    _check_index(index, "scatter_reduce")
    dim = normalize_dim(dim, input._data.ndim)
    if index._data.ndim != input._data.ndim or src._data.ndim != input._data.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    return ScatterReduce.apply(input, dim, index, src.to(input._dtype), reduce, include_self)


def index_reduce(input, dim: int, index, source, reduce, *, include_self=True):
    """``scatter_reduce`` of whole slices of ``source`` at ``index`` along ``dim`` (prod/mean/amax/amin)."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    dim, source = _source_for(input, dim, index, source, "index_reduce")
    return scatter_reduce(input, dim, _spread(index, dim, tuple(source.shape)).contiguous(), source, reduce,
                          include_self=include_self)
