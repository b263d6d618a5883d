"""Products and functions built from the other linalg ops: matmul, multi_dot, vecdot, diagonal,
matrix_power, cond, tensorinv, tensorsolve, householder_product (differentiable through the ops they use)."""

from __future__ import annotations

import math

from engine.linalg._common import check_matrix, check_tensor, eye_like
from engine.linalg.norms import matrix_norm
from engine.linalg.solvers import _no_out, inv, solve
from engine.ops.linalg import matmul as _matmul
from engine.tensor import Tensor


def matmul(input: Tensor, other: Tensor, *, out=None) -> Tensor:
    """Alias of ``engine.matmul``."""
    _no_out(out)
    return _matmul(input, other)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1, out=None) -> Tensor:
    """The dot product of vectors along ``dim`` (inputs broadcast); real dtypes, so no conjugation."""
    _no_out(out)
    check_tensor("linalg.vecdot", x, "x")
    check_tensor("linalg.vecdot", y, "y")
    return (x * y).sum(dim)


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The ``offset`` diagonal of the matrices over ``dim1``, ``dim2`` (those dims go, a last dim comes)."""
    check_tensor("linalg.diagonal", A)
    if A._data.ndim < 2:
        raise RuntimeError(f"diagonal(): expected a tensor with at least 2 dimensions, got {A._data.ndim}")
    X = A.movedim((dim1, dim2), (-2, -1))
    X = X[..., :, offset:] if offset >= 0 else X[..., -offset:, :]
    k = max(0, min(X._data.shape[-2], X._data.shape[-1]))
    X = X[..., :k, :k]
    return (X * eye_like(k, X)).sum(-1)


def matrix_power(A: Tensor, n: int, *, out=None) -> Tensor:
    """A^n for an integer n (A^0 is the identity, negative n uses the inverse)."""
    _no_out(out)
    check_tensor("linalg.matrix_power", A)
    if A._data.ndim < 2 or A._data.shape[-1] != A._data.shape[-2]:
        raise RuntimeError("linalg.matrix_power: A must be batches of square matrices")
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"linalg.matrix_power(): argument 'n' must be int, not {type(n).__name__}")
    size = A._data.shape[-1]
    if n == 0:
        return A * 0 + eye_like(size, A)
    if n < 0:
        check_matrix("linalg.matrix_power", A, square=True)
        A, n = inv(A), -n
    result = None
    base = A
    while n:
        if n & 1:
            result = base if result is None else _matmul(result, base)
        n >>= 1
        if n:
            base = _matmul(base, base)
    assert result is not None
    return result


def multi_dot(tensors, *, out=None) -> Tensor:
    """The chained product of matrices; the first and last may be vectors (as in PyTorch)."""
    _no_out(out)
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        check_tensor("linalg.multi_dot", t, f"tensors[{i}]")
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if t._data.ndim not in allowed:
            where = "first" if i == 0 else "last" if i == len(tensors) - 1 else None
            kind = f"the {where} tensor must be 1D or 2D" if where else f"tensor {i} must be 2D"
            raise RuntimeError(f"multi_dot(): {kind} but got {t._data.ndim}D")
    result = tensors[0]
    for t in tensors[1:]:
        result = _matmul(result, t)
    return result


def cond(A: Tensor, p=None, *, out=None) -> Tensor:
    """The condition number of A in the norm ``p`` (2 by default: s_max / s_min)."""
    from engine.linalg.decompositions import svdvals

    _no_out(out)
    check_matrix("linalg.cond", A)
    if p is None or p in (2, -2):
        s = svdvals(A)
        ratio = s[..., 0] / s[..., -1]
        return ratio if p in (None, 2) else 1 / ratio
    if p not in ("fro", "nuc", math.inf, -math.inf, 1, -1):
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    check_matrix("linalg.cond", A, square=True)
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


def tensorinv(A: Tensor, ind: int = 2, *, out=None) -> Tensor:
    """The inverse of A for ``tensordot(A, X, ind)``: shape A.shape[ind:] + A.shape[:ind]."""
    _no_out(out)
    check_tensor("linalg.tensorinv", A)
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    shape = tuple(A._data.shape)
    rows, cols = math.prod(shape[:ind]), math.prod(shape[ind:])
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {cols} != {rows}")
    return inv(A.reshape(rows, cols)).reshape(shape[ind:] + shape[:ind])


def tensorsolve(A: Tensor, B: Tensor, dims=None, *, out=None) -> Tensor:
    """The X with ``tensordot(A, X, X.ndim) == B``; ``dims`` of A are moved to the end first."""
    _no_out(out)
    check_tensor("linalg.tensorsolve", A)
    check_tensor("linalg.tensorsolve", B, "B")
    if dims is not None:
        dims = tuple(dims)
        A = A.movedim(dims, tuple(range(A._data.ndim - len(dims), A._data.ndim)))
    result_shape = tuple(A._data.shape[B._data.ndim:])
    rows, cols = B._data.size, math.prod(result_shape)
    if math.prod(A._data.shape[:B._data.ndim]) != rows or rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                           f"prod(self.shape[:other.ndim]), but got {cols} != {rows}")
    return solve(A.reshape(rows, cols), B.reshape(rows)).reshape(result_shape)


def householder_product(A: Tensor, tau: Tensor, *, out=None) -> Tensor:
    """The first n columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T with v_i below the diagonal of A's column i
    (LAPACK's orgqr; differentiable in A and tau)."""
    _no_out(out)
    check_matrix("linalg.householder_product", A)
    check_tensor("linalg.householder_product", tau, "tau")
    m, n = A._data.shape[-2:]
    k = tau._data.shape[-1] if tau._data.ndim else 0
    if m < n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-2] must be greater than or equal to "
                           "input.shape[-1]")
    if k > n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-1] must be greater than or equal to "
                           "tau.shape[-1]")
    if tau._data.ndim != A._data.ndim - 1 or tuple(tau._data.shape[:-1]) != tuple(A._data.shape[:-2]):
        raise RuntimeError("torch.linalg.householder_product: Expected batch dimensions of tau to be equal to "
                           f"input.shape[:-2], but got {tuple(tau._data.shape[:-1])}")
    V = A.tril(-1) + eye_like(m, A)[:, :n]
    Q = A[..., :, :1] * 0 + eye_like(m, A)  # (..., m, m) identity carrying A's batch shape
    for i in range(k):
        v = V[..., :, i]
        Qv = _matmul(Q, v.unsqueeze(-1))
        Q = Q - tau[..., i].unsqueeze(-1).unsqueeze(-1) * _matmul(Qv, v.unsqueeze(-2))
    return Q[..., :, :n]
