"""Indexing: ``x[...]`` and ``x[...] = v``, gather, scatter / scatter_add, index_select, masked_fill,
masked_select, take_along_dim, nonzero."""

from __future__ import annotations

import numpy as np

from engine import backend
from engine.autograd.function import Op
from engine.dtypes import FLOAT, bool_, int64
from engine.ops import grad_math as gm
from engine.ops.promotion import as_scalar, check_same_device, raw, shape_of
from engine.ops.reduction import normalize_dim, sum_to
from engine.tensor import Tensor, wrap

_BASIC = (int, slice, type(None), type(Ellipsis))


def normalize_index(index, device):
    """(index as a tuple NumPy/CuPy understands, whether it is basic slicing)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    basic = True
    for item in index:
        if isinstance(item, bool) or not isinstance(item, _BASIC):
            basic = False
            if isinstance(item, Tensor):
                if item._device is not device:
                    raise RuntimeError(f"indices should be on the same device as the indexed tensor "
                                       f"({item._device} vs {device})")
                item = item._data
                if item.dtype.kind == "f":
                    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            elif isinstance(item, list | tuple) or isinstance(item, np.ndarray):
                item = device.xp.asarray(item)
                if item.dtype.kind == "f":
                    raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
                if item.size == 0:
                    item = item.astype(np.int64)
            elif isinstance(item, np.integer):
                item = int(item)
                basic = True
            if getattr(item, "dtype", None) is not None and item.dtype == np.uint8:
                item = item.astype(bool)  # NOTE: byte masks index like bool masks, as in PyTorch
        out.append(item)
    return tuple(out), basic


def _has_integer_arrays(index) -> bool:
    return any(getattr(item, "dtype", None) is not None and item.dtype.kind in "iu" for item in index)


class BasicIndex(Op):
    """``x[ints, slices, None, ...]``: a view."""

    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, index):
        ctx.meta = (x._data.shape, index)
        return x._data[index]

    @staticmethod
    def backward(ctx, g):
        shape, index = ctx.meta
        return gm.embed(g, shape, index), None


class AdvancedIndex(Op):
    """``x[int_tensor]``, ``x[mask]`` and mixes with slices: a copy."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.meta = (x._data.shape, index)
        return x._data[index]

    @staticmethod
    def backward(ctx, g):
        shape, index = ctx.meta
        return IndexAccumulate.apply(g, shape, index), None

    def _release_extra(self):
        self.meta = None


class EmbedSlice(Op):
    """Zeros of ``shape`` with ``g`` written at a basic index (the gradient of slicing)."""

    @staticmethod
    def forward(ctx, g, shape, index):
        ctx.index = index
        out = g._device.xp.zeros(shape, g._dtype.np)
        out[index] = g._data
        return out

    @staticmethod
    def backward(ctx, gg):
        return BasicIndex.apply(gg, ctx.index), None, None


def embed_slice(g, shape, index):
    return EmbedSlice.apply(g, shape, index)


class IndexAccumulate(Op):
    """Zeros of ``shape`` with ``g`` added at an advanced index (repeated indices accumulate)."""

    @staticmethod
    def forward(ctx, g, shape, index):
        ctx.index = index
        xp = g._device.xp
        out = xp.zeros(shape, g._dtype.np)
        if _has_integer_arrays(index):
            backend.index_add(xp, out, index, g._data)
        else:
            out[index] = g._data
        return out

    @staticmethod
    def backward(ctx, gg):
        return AdvancedIndex.apply(gg, ctx.index), None, None


def split_index(index: tuple):
    """(basic part, advanced part) of an index that mixes integers with index arrays.

    NOTE: NumPy treats such integers as advanced indices (which can move the result's dims);
    PyTorch applies them first as plain selections. Indexing in two steps gives PyTorch's layout.
    """
    if not any(type(item) is int for item in index):
        return None, index
    first, second = [], []
    for item in index:
        if type(item) is int:
            first.append(item)
        elif item is None or isinstance(item, slice):
            first.append(item)
            second.append(slice(None))
        elif item is Ellipsis:
            first.append(item)
            second.append(item)
        else:
            first.extend([slice(None)] * (item.ndim if item.dtype == bool else 1))
            second.append(item)
    return tuple(first), tuple(second)


def take(x, index: tuple, basic: bool):
    """``x[index]`` for an already normalized index."""
    if basic:
        return BasicIndex.apply(x, index)
    first, second = split_index(index)
    if first is not None:
        x = BasicIndex.apply(x, first)
    return AdvancedIndex.apply(x, second)


def write(data, index: tuple, value) -> None:
    """``data[index] = value`` in place, with PyTorch's layout for mixed indices."""
    first, second = split_index(index) if _is_advanced(index) else (None, index)
    if first is not None:
        data = data[first]
    data[second] = value


def getitem(x, index):
    """``x[index]`` with PyTorch/NumPy semantics."""
    if index.__class__ is int and x._data.ndim:
        return BasicIndex.apply(x, (index,))
    index, basic = normalize_index(index, x._device)
    return take(x, index, basic)


class IndexPut(Op):
    """A copy of ``x`` with ``value`` written at ``index`` (``x[index] = value`` out of place)."""

    @staticmethod
    def forward(ctx, x, value, index):
        ctx.meta = (index, shape_of(value))
        out = x._data.copy()
        write(out, index, raw(value))
        return out

    @staticmethod
    def backward(ctx, g):
        index, value_shape = ctx.meta
        need_x, need_value = ctx.needs_input_grad[:2]
        grad_x = IndexPut.apply(g, 0.0, index) if need_x else None
        grad_value = None
        if need_value:
            picked = take(g, index, not _is_advanced(index))
            grad_value = sum_to(picked, value_shape)
        return grad_x, grad_value, None


def _is_advanced(index) -> bool:
    return any(isinstance(item, bool) or not isinstance(item, _BASIC) for item in index)


def setitem(x, index, value) -> None:
    """``x[index] = value``: in place, recorded by autograd when ``value`` or ``x`` requires grad."""
    from engine.ops.inplace import apply_inplace, recording

    index, _ = normalize_index(index, x._device)
    if isinstance(value, Tensor):
        if value._device is not x._device:
            if value._data.ndim == 0:
                value = value.to(x._device)
            else:
                check_same_device(x, value)
        if value._dtype is not x._dtype:
            value = value.to(x._dtype)
    else:
        scalar = as_scalar(value)
        if scalar is None:
            from engine.creation import as_tensor

            value = as_tensor(value, dtype=x._dtype, device=x._device)
        else:
            value = scalar
    if recording(x, value):
        apply_inplace(x, lambda old, v: IndexPut.apply(old, v, index), value)
        return
    write(x._data, index, raw(value))
    x._vc[0] += 1


# ----- gather / scatter ------------------------------------------------------------------------
def _along_dim_index(index_data, dim: int, xp):
    """Full advanced index addressing ``dim`` by ``index_data`` and every other dim by position."""
    grids = xp.indices(index_data.shape, sparse=True)
    full = list(grids)
    full[dim] = index_data
    return tuple(full)


class Gather(Op):
    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.meta = (x._data.shape, dim, index)
        return x._device.xp.take_along_axis(x._data, index._data, axis=dim) if x._data.ndim else x._data.copy()

    @staticmethod
    def backward(ctx, g):
        shape, dim, index = ctx.meta
        return scatter_into_zeros(shape, dim, index, g), None, None

    def _release_extra(self):
        self.meta = None


def _check_index(index, name: str) -> None:
    if not isinstance(index, Tensor) or index._dtype.category == FLOAT or index._dtype is bool_:
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")


def gather(input, dim: int, index, *, sparse_grad: bool = False):
    """``out[i][j] = input[i][index[i][j]]`` along ``dim``."""
    _check_index(index, "gather")
    dim = normalize_dim(dim, input._data.ndim)
    if index._data.ndim != input._data.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    if input._data.ndim and any(i > s for d, (i, s) in enumerate(zip(index._data.shape, input._data.shape,
                                                                       strict=True)) if d != dim):
        raise RuntimeError(f"Size does not match at a dimension other than {dim}: index {list(index._data.shape)} "
                           f"vs input {list(input._data.shape)}")
    if input._data.ndim and index._data.shape != input._data.shape:
        # take_along_axis needs equal extents outside dim: use the leading block of the input
        block = tuple(slice(0, i) if d != dim else slice(None) for d, i in enumerate(index._data.shape))
        sliced = getitem(input, block)
        out = Gather.apply(sliced, dim, index)
        return out
    return Gather.apply(input, dim, index)


class ScatterAdd(Op):
    """``out = x.clone(); out[index along dim] += src``."""

    @staticmethod
    def forward(ctx, x, dim, index, src):
        ctx.meta = (dim, index, src._data.shape)
        xp = x._device.xp
        out = x._data.copy()
        block = src._data[tuple(slice(0, s) for s in index._data.shape)]
        backend.index_add(xp, out, _along_dim_index(index._data, dim, xp), block)
        return out

    @staticmethod
    def backward(ctx, g):
        dim, index, src_shape = ctx.meta
        need_x, need_src = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        return (g if need_x else None), None, None, (_gather_padded(g, dim, index, src_shape) if need_src else None)

    def _release_extra(self):
        self.meta = None


class Scatter(Op):
    """``out = x.clone(); out[index along dim] = src`` (src a tensor or a number)."""

    @staticmethod
    def forward(ctx, x, dim, index, src, reduce):
        ctx.meta = (dim, index, shape_of(src))
        xp = x._device.xp
        out = x._data.copy()
        full = _along_dim_index(index._data, dim, xp)
        value = src._data[tuple(slice(0, s) for s in index._data.shape)] if isinstance(src, Tensor) else src
        if reduce is None:
            out[full] = value
        elif reduce == "add":
            backend.index_add(xp, out, full, xp.broadcast_to(xp.asarray(value, dtype=out.dtype), index._data.shape))
        elif reduce == "multiply":
            np.multiply.at(out, full, value) if xp is np else _unsupported_reduce(reduce)
        else:
            _unsupported_reduce(reduce)
        return out

    @staticmethod
    def backward(ctx, g):
        dim, index, src_shape = ctx.meta
        need_x, need_src = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        grad_x = Scatter.apply(g, dim, index, 0.0, None) if need_x else None
        grad_src = _gather_padded(g, dim, index, src_shape) if need_src else None
        return grad_x, None, None, grad_src, None

    def _release_extra(self):
        self.meta = None


def _unsupported_reduce(reduce):
    raise RuntimeError(f"scatter(): reduce={reduce!r} is not supported (use 'add' or 'multiply' on CPU)")


def _gather_padded(g, dim, index, src_shape):
    """Gradient for ``src`` of scatter: gathered values, zero-padded up to src's shape."""
    picked = gather(g, dim, index)
    if picked._data.shape == tuple(src_shape):
        return picked
    return embed_slice(picked, tuple(src_shape), tuple(slice(0, s) for s in picked._data.shape))


def scatter(input, dim: int, index, src=None, *, value=None, reduce=None):
    """Write ``src`` (a tensor or a number) into a copy of ``input`` at ``index`` along ``dim``."""
    _check_index(index, "scatter")
    if src is None:
        src = value
    dim = normalize_dim(dim, input._data.ndim)
    if isinstance(src, Tensor):
        src = src.to(input._dtype) if src._dtype is not input._dtype else src
    return Scatter.apply(input, dim, index, src, reduce)


def scatter_add(input, dim: int, index, src):
    _check_index(index, "scatter_add")
    dim = normalize_dim(dim, input._data.ndim)
    src = src.to(input._dtype) if src._dtype is not input._dtype else src
    return ScatterAdd.apply(input, dim, index, src)


def scatter_into_zeros(shape, dim: int, index, src):
    """Zeros of ``shape`` with ``src`` added at ``index`` along ``dim`` (differentiable in src)."""
    from engine.creation import zeros

    return scatter_add(zeros(shape, dtype=src._dtype, device=src._device), dim, index, src)


def index_select(input, dim: int, index):
    if index._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    dim = normalize_dim(dim, input._data.ndim)
    if input._data.ndim == 0:
        return getitem(input.reshape(1), index.reshape(-1)).reshape(()) if index._data.ndim == 0 else \
            getitem(input.reshape(1), index)
    return getitem(input, (slice(None),) * dim + (index.reshape(-1),))


def take_along_dim(input, indices, dim=None):
    if dim is None:
        return getitem(input.reshape(-1), indices.reshape(-1))
    from engine.ops.shape import broadcast_shapes, expand

    dim = normalize_dim(dim, input._data.ndim)
    in_shape = list(input._data.shape)
    idx_shape = list(indices._data.shape)
    in_shape[dim] = idx_shape[dim] = 1
    common = broadcast_shapes(tuple(in_shape), tuple(idx_shape))
    in_target = list(common)
    in_target[dim] = input._data.shape[dim]
    idx_target = list(common)
    idx_target[dim] = indices._data.shape[dim]
    return gather(expand(input, tuple(in_target)), dim, expand(indices, tuple(idx_target)).contiguous())


def masked_fill(input, mask, value):
    """``value`` where ``mask`` is True, else ``input`` (value a number or 0-dim tensor)."""
    from engine.ops.arithmetic import where

    if mask._dtype is not bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask._dtype.name}")
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value._data.ndim} dimension(s).")
        value = value.to(input._dtype)
    else:
        value = as_scalar(value)
    out = where(mask, value, input)
    return out if out._dtype is input._dtype else out.to(input._dtype)


def masked_select(input, mask):
    from engine.ops.shape import broadcast_tensors

    input, mask = broadcast_tensors(input, mask)
    return getitem(input, mask)


def nonzero(input, *, as_tuple: bool = False):
    found = input._device.xp.nonzero(input._data)
    if as_tuple:
        return tuple(wrap(i.astype(int64.np, copy=False), input._device) for i in found)
    xp = input._device.xp
    stacked = xp.stack(found, axis=1) if found else xp.zeros((0, 0), np.int64)
    return wrap(stacked.astype(int64.np, copy=False), input._device)


def argwhere(input):
    return nonzero(input)
