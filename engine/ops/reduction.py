"""Reductions over dims (with keepdim): sum, mean, var, std, prod, amax/amin, max/min, argmax/argmin,
logsumexp, norm, cumsum/cumprod, all/any; and ``sum_to`` for broadcast gradients."""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.backend import array_module_of
from engine.dtypes import (
    COMPLEX,
    FLOAT,
    bfloat16,
    bool_,
    complex64,
    complex128,
    float16,
    float32,
    float64,
    int64,
)
from engine.ops import grad_math as gm
from engine.ops.complex import no_complex
from engine.tensor import Tensor, result_like, wrap

# PyTorch's torch.return_types: tuples whose fields are also named.
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def normalize_dims(dim, ndim: int) -> tuple:
    """Sorted non-negative dims; ``None`` (or an empty tuple) means all of them."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    elif not dim:
        return tuple(range(ndim))
    if ndim == 0:
        for d in dim:
            if d not in (0, -1):
                raise IndexError(f"Dimension out of range (expected to be in range of [-1, 0], but got {d})")
        return ()
    out = []
    for d in dim:
        if not -ndim <= d < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                             f"but got {d})")
        out.append(d % ndim)
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {out} appears multiple times in the list of dims")
    return tuple(sorted(out))


def normalize_dim(dim: int, ndim: int) -> int:
    """One non-negative dim; a 0-d tensor accepts 0 and -1."""
    size = builtins.max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], "
                         f"but got {dim})")
    return dim % size


def _kept_shape(shape: tuple, dims: tuple) -> tuple:
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


expand_reduced = gm.expand_reduced
sum_to = gm.sum_to


_NATIVE_SUM = frozenset((float32, float64, int64, complex64, complex128))


def _accumulator(dtype):
    if dtype.category == COMPLEX:
        return None
    if dtype.category != FLOAT:
        return int64.np
    if dtype is float16 or dtype is bfloat16:
        return float32.np  # NOTE: half-precision sums accumulate in float32, as PyTorch does
    return None


class Sum(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        data = x._data
        ctx.meta = (data.shape, dims, keepdim)
        if x._dtype in _NATIVE_SUM:
            return data.sum() if dims is None else data.sum(dims, None, None, keepdim)
        acc = _accumulator(x._dtype)
        out = data.sum(dims, acc, None, keepdim)
        return out.astype(x._dtype.np) if x._dtype.category == FLOAT else out

    @staticmethod
    def backward(ctx, g):
        shape, dims, keepdim = ctx.meta
        return expand_reduced(g, shape, dims, keepdim), None, None


class Mean(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        shape = x._data.shape
        count = 1
        for d in dims:
            count *= shape[d]
        ctx.meta = (shape, dims, keepdim, count)
        acc = _accumulator(x._dtype)
        out = x._data.sum(axis=dims, keepdims=keepdim, dtype=acc) / count
        return out.astype(x._dtype.np) if acc is not None else out

    @staticmethod
    def backward(ctx, g):
        shape, dims, keepdim, count = ctx.meta
        return expand_reduced(g / count, shape, dims, keepdim), None, None


class Var(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        data = x._data
        count = 1
        for d in dims:
            count *= data.shape[d]
        ctx.save_for_backward(x)
        ctx.meta = (dims, correction, keepdim, count)
        centered = data - data.mean(axis=dims, keepdims=True) if count else data
        return (centered * centered).sum(axis=dims, keepdims=keepdim) / builtins.max(count - correction, 0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        dims, correction, keepdim, count = ctx.meta
        g = expand_reduced(g, gm.shape(x), dims, keepdim)
        dof = count - correction
        scale = 2.0 / dof if dof > 0 else float("inf")
        return g * (x - gm.mean_keepdim(x, dims)) * scale, None, None, None


class Prod(Op):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.save_for_backward(x)
        ctx.meta = (dims, keepdim)
        acc = _accumulator(x._dtype)
        out = x._data.prod(axis=dims, keepdims=keepdim, dtype=acc)
        return out.astype(x._dtype.np) if acc is not None and x._dtype.category == FLOAT else out

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.meta
        g = expand_reduced(g, x._data.shape, dims, keepdim)
        if not bool((x._data == 0).any()):
            return g * (x.prod(dims, keepdim=True) / x), None, None
        # NOTE: with zeros, d(prod)/dx_i is the product of the *other* elements (no division).
        return g * wrap(_product_of_others(x._data, dims), x._device), None, None


def _product_of_others(data, dims: tuple):
    xp = array_module_of(data)
    moved = xp.moveaxis(data, dims, tuple(range(-len(dims), 0)))
    flat = moved.reshape((*moved.shape[:moved.ndim - len(dims)], -1))
    ones = xp.ones((*flat.shape[:-1], 1), dtype=flat.dtype)
    left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = xp.flip(xp.cumprod(xp.concatenate([ones, xp.flip(flat, -1)[..., :-1]], axis=-1), axis=-1), -1)
    others = (left * right).reshape(moved.shape)
    return xp.moveaxis(others, tuple(range(-len(dims), 0)), dims)


class Amax(Op):
    """Max (or min) over dims; ties share the gradient evenly."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, largest):
        ctx.save_for_backward(x)
        ctx.meta = (dims, keepdim, largest)
        if x._data.size == 0 and builtins.any(x._data.shape[d] == 0 for d in dims):
            raise IndexError("amax(): Expected reduction dim to have non-zero size.")
        if largest:
            return x._data.max(axis=dims, keepdims=keepdim)
        return x._data.min(axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        dims, keepdim, largest = ctx.meta
        out = Amax.apply(x, dims, True, largest)
        mask = (x == out).to(x._dtype)
        g = expand_reduced(g, x._data.shape, dims, keepdim)
        return g * mask / mask.sum(dims, keepdim=True), None, None, None


class MaxAlongDim(Op):
    """Values of max/min along one dim; the gradient goes to the selected index."""

    @staticmethod
    def forward(ctx, x, dim, keepdim, indices):
        ctx.meta = (x._data.shape, dim, keepdim)
        ctx.indices = indices
        xp = x._device.xp
        if not x._data.ndim:
            return x._data.copy()
        index = indices._data if keepdim else xp.expand_dims(indices._data, dim)
        out = xp.take_along_axis(x._data, index, axis=dim)
        return out if keepdim else out.squeeze(dim)

    @staticmethod
    def backward(ctx, g):
        from engine.ops.indexing import scatter_into_zeros

        shape, dim, keepdim = ctx.meta
        if not shape:
            return g, None, None, None
        index = ctx.indices if keepdim else ctx.indices.unsqueeze(dim)
        g = g if keepdim else g.unsqueeze(dim)
        return scatter_into_zeros(shape, dim, index, g), None, None, None

    def _release_extra(self):
        self.indices = None


def _max_min(input, dim, keepdim, largest: bool, other):
    from engine.ops import arithmetic

    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return arithmetic.maximum(input, other) if largest else arithmetic.minimum(input, other)
    if dim is None:
        return Amax.apply(input, normalize_dims(None, input._data.ndim), False, largest)
    dim = normalize_dim(dim, input._data.ndim)
    if input._data.ndim == 0:
        indices = wrap(np.zeros((), dtype=np.int64), input._device)
        values = MaxAlongDim.apply(input, 0, keepdim, indices)
    else:
        if input._data.shape[dim] == 0:
            raise IndexError(f"{'max' if largest else 'min'}(): Expected reduction dim {dim} to have non-zero size.")
        xp = input._device.xp
        find = xp.argmax if largest else xp.argmin
        raw_indices = find(input._data, axis=dim, keepdims=keepdim).astype(np.int64, copy=False)
        indices = wrap(raw_indices, input._device)
        values = MaxAlongDim.apply(input, dim, keepdim, indices)
    return (MaxResult if largest else MinResult)(values, indices)


def max(input, dim=None, keepdim=False, *, other=None):
    """Largest value; with ``dim``, a (values, indices) pair; with a tensor, elementwise maximum."""
    no_complex(input, "max")
    return _max_min(input, dim, keepdim, True, other)


def min(input, dim=None, keepdim=False, *, other=None):
    no_complex(input, "min")
    return _max_min(input, dim, keepdim, False, other)


def amax(input, dim=(), keepdim=False):
    no_complex(input, "amax")
    return Amax.apply(input, normalize_dims(dim, input._data.ndim), keepdim, True)


def amin(input, dim=(), keepdim=False):
    no_complex(input, "amin")
    return Amax.apply(input, normalize_dims(dim, input._data.ndim), keepdim, False)


def _arg_extreme(input, dim, keepdim, largest: bool):
    xp = input._device.xp
    find = xp.argmax if largest else xp.argmin
    if dim is None:
        out = find(input._data.reshape(-1))
        if keepdim:
            out = xp.asarray(out).reshape((1,) * input._data.ndim)
    else:
        dim = normalize_dim(dim, input._data.ndim)
        out = find(input._data, axis=dim, keepdims=keepdim) if input._data.ndim else xp.zeros((), np.int64)
    return wrap(xp.asarray(out).astype(np.int64, copy=False), input._device)


def argmax(input, dim=None, keepdim=False):
    no_complex(input, "argmax")
    return _arg_extreme(input, dim, keepdim, True)


def argmin(input, dim=None, keepdim=False):
    no_complex(input, "argmin")
    return _arg_extreme(input, dim, keepdim, False)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (all dims when None)."""
    if dim is None and not keepdim and dtype is None:
        if input._dtype in _NATIVE_SUM and not (input._requires_grad and state.enabled):
            return result_like(input._data.sum(), input)  # NOTE: graph-free fast path
        return Sum.apply(input, None, False)
    if dtype is not None:
        input = input.to(dtype)
    return Sum.apply(input, normalize_dims(dim, input._data.ndim), keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input._dtype.category < FLOAT:
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating point "
                           f"or complex dtype. Got: {input._dtype.name}")
    return Mean.apply(input, normalize_dims(dim, input._data.ndim), keepdim)


def _correction(unbiased, correction) -> float:
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with Bessel's ``correction`` (default 1; ``unbiased=False`` means 0)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if input._dtype.category == COMPLEX:
        raise RuntimeError("std and var of complex tensors are not supported by the engine; use "
                           "var(x.real) + var(x.imag)")
    if input._dtype.category != FLOAT:
        raise RuntimeError("std and var only support floating point and complex dtypes")
    return Var.apply(input, normalize_dims(dim, input._data.ndim), _correction(unbiased, correction), keepdim)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    from engine.ops.unary import sqrt

    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return Prod.apply(input, normalize_dims(dim, input._data.ndim), keepdim)


class LogSumExp(Op):
    _quiet = True

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        data = x._data
        xp = x._device.xp
        # NOTE: subtract the max so exp never overflows; an all -inf (or inf) slice uses 0 instead.
        peak = data.max(axis=dims, keepdims=True) if data.size else xp.zeros(_kept_shape(data.shape, dims), data.dtype)
        peak = xp.where(xp.isfinite(peak), peak, 0)
        out = xp.log(xp.exp(data - peak).sum(axis=dims, keepdims=True)) + peak
        ctx.save_for_backward(x)
        ctx.meta = (dims, keepdim)
        return out if keepdim else out.reshape([s for i, s in enumerate(out.shape) if i not in dims])

    @staticmethod
    def backward(ctx, g):
        from engine.ops.unary import exp

        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.meta
        out = LogSumExp.apply(x, dims, True)
        g = expand_reduced(g, x._data.shape, dims, keepdim)
        return g * exp(x - out), None, None


def logsumexp(input, dim, keepdim=False):
    from engine.ops.promotion import to_float

    return LogSumExp.apply(to_float(input), normalize_dims(dim, input._data.ndim), keepdim)


class Norm2(Op):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        data = x._data
        acc = _accumulator(x._dtype)
        out = x._device.xp.sqrt((data * data).sum(axis=dims, keepdims=keepdim, dtype=acc))
        ctx.save_for_backward(x)
        ctx.meta = (dims, keepdim)
        return out.astype(x._dtype.np) if acc is not None else out

    @staticmethod
    def backward(ctx, g):
        from engine.ops.arithmetic import where

        (x,) = ctx.saved_tensors
        dims, keepdim = ctx.meta
        out = Norm2.apply(x, dims, True)
        g = expand_reduced(g, x._data.shape, dims, keepdim)
        # NOTE: the subgradient at a zero norm is 0 (not nan), as in PyTorch.
        return g * where(out == 0, 0.0, x / out), None, None


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over ``dim`` (all elements when None): p in 'fro', 2, 1, inf, -inf, 0 or any float."""
    from engine.ops.unary import abs as abs_

    if dtype is not None:
        input = input.to(dtype)
    dims = normalize_dims(dim, input._data.ndim)
    if p in ("fro", 2, 2.0, None):
        return Norm2.apply(input, dims, keepdim)
    if p == "nuc":
        raise NotImplementedError("nuclear norm is not supported")
    magnitude = abs_(input)
    if p == float("inf"):
        return Amax.apply(magnitude, dims, keepdim, True)
    if p == float("-inf"):
        return Amax.apply(magnitude, dims, keepdim, False)
    if p == 0:
        return (magnitude != 0).to(input._dtype).sum(dims, keepdim=keepdim)
    if p == 1:
        return Sum.apply(magnitude, dims, keepdim)
    return Sum.apply(magnitude**p, dims, keepdim) ** (1.0 / p)


class Cumsum(Op):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        acc = _accumulator(x._dtype)
        out = x._device.xp.cumsum(x._data, axis=dim, dtype=acc)
        return out.astype(x._dtype.np) if acc is not None and x._dtype.category == FLOAT else out

    @staticmethod
    def backward(ctx, g):
        dim = ctx.dim
        return Cumsum.apply(g.flip(dim), dim).flip(dim), None


def cumsum(input, dim, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input._data.ndim == 0:
        return input.clone()
    return Cumsum.apply(input, normalize_dim(dim, input._data.ndim))


class Cumprod(Op):
    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        ctx.save_for_backward(x)
        return x._device.xp.cumprod(x._data, axis=dim)

    @staticmethod
    def backward(ctx, g):
        # NOTE: assumes no zeros in the input (as the usual closed form does).
        (x,) = ctx.saved_tensors
        dim = ctx.dim
        out = Cumprod.apply(x, dim)
        return Cumsum.apply((g * out).flip(dim), dim).flip(dim) / x, None


def cumprod(input, dim, *, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input._data.ndim == 0:
        return input.clone()
    return Cumprod.apply(input, normalize_dim(dim, input._data.ndim))


def _logical_reduce(input, dim, keepdim, method: str):
    data = input._data
    if dim is None:
        out = getattr(data, method)()
        if keepdim:
            out = input._device.xp.asarray(out).reshape((1,) * data.ndim)
    else:
        out = getattr(data, method)(axis=normalize_dims(dim, data.ndim), keepdims=keepdim)
    return wrap(out.astype(bool_.np, copy=False) if hasattr(out, "astype") else out, input._device)


def all(input, dim=None, keepdim=False):
    return _logical_reduce(input, dim, keepdim, "all")


def any(input, dim=None, keepdim=False):
    return _logical_reduce(input, dim, keepdim, "any")


def count_nonzero(input, dim=None):
    return sum((input != 0).to(int64), dim)
