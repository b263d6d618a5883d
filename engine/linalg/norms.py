"""Norms and small products: vector_norm, matrix_norm, norm, cross, vander."""

from __future__ import annotations

import math

from engine.autograd.function import Function
from engine.linalg._common import check_floating, check_matrix, check_tensor
from engine.linalg.decompositions import svdvals
from engine.ops.arithmetic import where
from engine.ops.reduction import Amax, Norm2, Sum, normalize_dims
from engine.ops.unary import abs as abs_
from engine.ops.unary import sign
from engine.tensor import Tensor

_INF = math.inf


class PNorm(Function):
    """(sum |x|^p)^(1/p) over ``dims``, for p not in {0, 1, 2, inf, -inf}."""

    @staticmethod
    def forward(ctx, x, p, dims, keepdim):
        xp = x._device.xp
        data = x._data
        out = (xp.abs(data) ** p).sum(axis=dims, keepdims=keepdim) ** (1.0 / p)
        from engine.tensor import wrap

        result = wrap(out.astype(data.dtype, copy=False), x._device)
        ctx.save_for_backward(x)
        ctx.meta = (p, dims, keepdim)
        return result

    @staticmethod
    def backward(ctx, g):
        # PyTorch: sign(x) * (|x| / norm)^(p-1) * g, zero where the norm is zero
        from engine.ops.grad_math import expand_reduced

        (x,) = ctx.saved_tensors
        p, dims, keepdim = ctx.meta
        norm = PNorm.apply(x, p, dims, True)
        g = expand_reduced(g, x._data.shape, dims, keepdim)
        zero = norm == 0
        safe = where(zero, 1.0, norm)
        return where(zero, 0.0, sign(x) * (abs_(x) / safe) ** (p - 1) * g), None, None, None


def _dims(dim, ndim: int) -> tuple:
    if dim is None or (isinstance(dim, tuple | list) and not dim):
        return tuple(range(ndim))
    return normalize_dims(dim, ndim)


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None, out=None) -> Tensor:
    """The vector ``ord``-norm of x over ``dim`` (all elements when None), as ``torch.linalg.vector_norm``."""
    check_tensor("linalg.vector_norm", x, "input")
    if out is not None:
        raise NotImplementedError("the out= argument of engine.linalg functions is not supported")
    if dtype is not None:
        x = x.to(dtype)
    check_floating("linalg.vector_norm", x)
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: Expected a number as ord, but got {ord!r}")
    ord = float(ord)
    dims = _dims(dim, x._data.ndim)
    if x._data.ndim == 0:
        dims = ()
    if (x._data.size == 0 and ord < 0) or (x._data.size == 0 and ord == _INF and any(
            x._data.shape[d] == 0 for d in dims)):
        raise RuntimeError(f"linalg.vector_norm cannot compute the {ord:g} norm on an empty tensor because the "
                           "operation does not have an identity")
    if ord == 2:
        return Norm2.apply(x, dims, keepdim)
    magnitude = abs_(x)
    if ord == _INF:
        return Amax.apply(magnitude, dims, keepdim, True)
    if ord == -_INF:
        return Amax.apply(magnitude, dims, keepdim, False)
    if ord == 1:
        return Sum.apply(magnitude, dims, keepdim)
    if ord == 0:
        return Sum.apply(where(x != 0, 1.0, 0.0).to(x._dtype) + x * 0, dims, keepdim)
    return PNorm.apply(x, ord, dims, keepdim)


def _move_to_end(A: Tensor, dims: tuple) -> Tensor:
    return A.movedim(dims, (-2, -1))


def _restore_kept(result: Tensor, dims: tuple, keepdim: bool) -> Tensor:
    if keepdim:
        for d in sorted(dims):
            result = result.unsqueeze(d)
    return result


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None, out=None) -> Tensor:
    """The matrix norm of A over the two dims ``dim``: 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2."""
    if out is not None:
        raise NotImplementedError("the out= argument of engine.linalg functions is not supported")
    check_tensor("linalg.matrix_norm", A)
    if dtype is not None:
        A = A.to(dtype)
    check_matrix("linalg.matrix_norm", A)
    if not isinstance(dim, tuple | list) or len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {dim}")
    ndim = A._data.ndim
    d0, d1 = (d % ndim if -ndim <= d < ndim else None for d in dim)
    if d0 is None or d1 is None:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if isinstance(ord, str):
        if ord == "fro":
            return vector_norm(A, 2, (d0, d1), keepdim)
        if ord == "nuc":
            return _restore_kept(svdvals(_move_to_end(A, (d0, d1))).sum(-1), (d0, d1), keepdim)
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    if ord in (2, -2):
        s = svdvals(_move_to_end(A, (d0, d1)))
        reduced = Amax.apply(s, (s._data.ndim - 1,), False, ord == 2)
        return _restore_kept(reduced, (d0, d1), keepdim)
    if ord in (1, -1, _INF, -_INF):
        # 1: largest column sum (sum over rows d0); inf: largest row sum (sum over columns d1)
        summed, kept = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = abs_(A).sum(summed, keepdim=True)
        result = Amax.apply(sums, (kept,), True, ord > 0)
        return result if keepdim else result.squeeze(max(d0, d1)).squeeze(min(d0, d1))
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None, out=None) -> Tensor:
    """``torch.linalg.norm``: a vector norm or a matrix norm, chosen by ``dim`` and the input's rank."""
    if out is not None:
        raise NotImplementedError("the out= argument of engine.linalg functions is not supported")
    check_tensor("linalg.norm", A)
    if dim is not None and not isinstance(dim, tuple | list):
        dim = (dim,)
    if dim is not None and len(dim) not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {list(dim)}")
    if dim is None and ord is not None and A._data.ndim not in (1, 2):
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                           f"Got {A._data.ndim}D.")
    if ord is None:
        if dim is not None and len(dim) == 2:
            return matrix_norm(A, "fro", tuple(dim), keepdim, dtype=dtype)
        if dim is None:
            if keepdim:
                return vector_norm(A, 2, None, True, dtype=dtype)
            return vector_norm(A.flatten() if A._data.ndim else A, 2, None, False, dtype=dtype)
        return vector_norm(A, 2, tuple(dim), keepdim, dtype=dtype)
    is_matrix = (dim is not None and len(dim) == 2) or (dim is None and A._data.ndim == 2)
    if is_matrix:
        return matrix_norm(A, ord, tuple(dim) if dim is not None else (-2, -1), keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: Expected a number as ord, but got {ord!r}")
    return vector_norm(A, ord, tuple(dim) if dim is not None else None, keepdim, dtype=dtype)


# ----- cross / vander ----------------------------------------------------------------------------------
def cross(input: Tensor, other: Tensor, *, dim: int = -1, out=None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (inputs broadcast)."""
    from engine.ops.shape import broadcast_tensors, stack

    if out is not None:
        raise NotImplementedError("the out= argument of engine.linalg functions is not supported")
    check_tensor("linalg.cross", input, "input")
    check_tensor("linalg.cross", other, "other")
    if input._data.ndim != other._data.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions. Got {input._data.ndim} "
                           f"and {other._data.ndim}")
    ndim = input._data.ndim
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    if input._data.shape[dim] != 3 or other._data.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got "
                           f"{input._data.shape[dim]} and {other._data.shape[dim]}")
    a, b = broadcast_tensors(input, other)
    a, b = a.movedim(dim, -1), b.movedim(dim, -1)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    result = stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)
    return result.movedim(-1, dim)


def vander(x: Tensor, *, N=None) -> Tensor:
    """The Vandermonde matrix of x (..., n) -> (..., n, N): columns x^0, x^1, ..., x^(N-1)."""
    from engine.creation import ones_like
    from engine.ops.shape import stack

    check_tensor("linalg.vander", x, "x")
    if x._data.ndim == 0:
        raise RuntimeError("linalg.vander: x must have at least one dimension. Got a 0-dimensional tensor")
    N = x._data.shape[-1] if N is None else N
    if N <= 1:
        raise RuntimeError("N must be greater than 1.")
    columns = [ones_like(x), x] + [x**k for k in range(2, N)]
    return stack(columns, -1)
