"""Diagonals: ``diagonal`` (a writable view, as PyTorch's), ``diag_embed`` and ``diag``."""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Op
from engine.ops.reduction import normalize_dim
from engine.tensor import Tensor


def _diagonal_view(xp, a, offset: int, dim1: int, dim2: int):
    """The diagonal of ``a`` as a view that writes through (NumPy's own diagonal is read-only)."""
    moved = xp.moveaxis(a, (dim1, dim2), (-2, -1))
    sub = moved[..., :, offset:] if offset >= 0 else moved[..., -offset:, :]
    n = max(0, min(sub.shape[-2], sub.shape[-1]))
    if xp is not np:
        return xp.diagonal(sub[..., :n, :n], 0, -2, -1)  # CuPy's diagonal is a writable view
    return np.lib.stride_tricks.as_strided(sub, shape=(*sub.shape[:-2], n),
                                           strides=(*sub.strides[:-2], sub.strides[-2] + sub.strides[-1]),
                                           writeable=True)


class Diagonal(Op):
    _view = True

    @staticmethod
    def forward(ctx, x, offset, dim1, dim2):
        ctx.args = (x._data.shape, offset, dim1, dim2)
        ctx.xp = x._device.xp
        return _diagonal_view(x._device.xp, x._data, offset, dim1, dim2)

    @staticmethod
    def backward(ctx, g):
        shape, offset, dim1, dim2 = ctx.args
        if isinstance(g, Tensor):  # create_graph: the same scatter as differentiable ops
            return _embed(g, offset, dim1, dim2, shape), None, None, None
        xp = ctx.xp
        grad = xp.zeros(shape, dtype=g.dtype)
        _diagonal_view(xp, grad, offset, dim1, dim2)[...] = g
        return grad, None, None, None


def _embed(g: Tensor, offset: int, dim1: int, dim2: int, shape: tuple) -> Tensor:
    """A tensor of ``shape`` that is zero except its (offset, dim1, dim2) diagonal, which is ``g``."""
    from engine.creation import eye, zeros
    from engine.ops.shape import cat

    n = g.shape[-1]
    if n == 0:  # an offset past the matrix: an empty diagonal
        return zeros(*shape, dtype=g.dtype, device=g.device)
    square = g.unsqueeze(-1) * eye(n, dtype=g.dtype, device=g.device)  # (..., n, n)
    rows, cols = shape[dim1], shape[dim2]
    r0, c0 = (0, offset) if offset >= 0 else (-offset, 0)
    batch = tuple(square.shape[:-2])
    parts = []
    if c0:
        square = cat([zeros(*batch, n, c0, dtype=g.dtype, device=g.device), square], -1)
    if cols - c0 - n:
        square = cat([square, zeros(*batch, n, cols - c0 - n, dtype=g.dtype, device=g.device)], -1)
    if r0:
        parts.append(zeros(*batch, r0, cols, dtype=g.dtype, device=g.device))
    parts.append(square)
    if rows - r0 - n:
        parts.append(zeros(*batch, rows - r0 - n, cols, dtype=g.dtype, device=g.device))
    full = cat(parts, -2) if len(parts) > 1 else square
    return full.movedim((-2, -1), (dim1, dim2))


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The ``offset`` diagonal over ``dim1``/``dim2`` as a view (those dims go, a last dim comes)."""
    ndim = input._data.ndim
    if ndim < 2:
        raise RuntimeError(f"diagonal(): expected a tensor with at least 2 dimensions, got {ndim}")
    d1, d2 = normalize_dim(dim1, ndim), normalize_dim(dim2, ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return Diagonal.apply(input, int(offset), d1, d2)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose (offset) diagonals are the last dim of ``input``."""
    ndim = input._data.ndim + 1
    d1, d2 = normalize_dim(dim1, ndim), normalize_dim(dim2, ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    n = input.shape[-1] + abs(int(offset))
    batch = list(input.shape[:-1])
    shape = batch[:]
    for d in sorted((d1, d2)):
        shape.insert(d, n)
    return _embed(input, int(offset), d1, d2, tuple(shape))


def diag(input: Tensor, diagonal: int = 0, *, out=None) -> Tensor:
    """A vector's square matrix with it on the ``diagonal``-th diagonal, or a matrix's diagonal (a copy)."""
    if out is not None:
        raise TypeError("diag(): out= is not supported")
    if input._data.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input._data.ndim == 2:
        return Diagonal.apply(input, int(diagonal), 0, 1).clone()
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input._data.ndim}D")
