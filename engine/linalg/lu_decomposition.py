"""LU with partial pivoting: lu, lu_factor, lu_factor_ex, lu_solve (and lu_unpack for ``torch.lu_unpack``).

The factorization is LAPACK's getrf algorithm (largest pivot in the column, first one on ties),
run column by column on the whole batch at once with the backend's array ops; its backward is
PyTorch's ``linalg_lu_backward``.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.autograd.function import Function
from engine.linalg._common import batch_prefix, check_matrix, check_same_dtype, like
from engine.linalg.solvers import _no_out, solve_triangular
from engine.ops.linalg import matmul
from engine.ops.shape import cat
from engine.tensor import Tensor

LUResult = namedtuple("linalg_lu", ["P", "L", "U"])  # type: ignore[name-match]
LUFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])  # type: ignore[name-match]
LUFactorExResult = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])  # type: ignore[name-match]
LUUnpackResult = namedtuple("lu_unpack", ["P", "L", "U"])  # type: ignore[name-match]


def _getrf(data, xp, pivot: bool):
    """(packed LU, 1-based pivots int32, permutation, info int32) for a batch (..., m, n)."""
    batch, (m, n) = data.shape[:-2], data.shape[-2:]
    k = min(m, n)
    a = data.reshape((-1, m, n)).copy()
    count = a.shape[0]
    rows = xp.arange(count)
    perm = xp.broadcast_to(xp.arange(m), (count, m)).copy()
    pivots = xp.zeros((count, k), dtype=np.int32)
    info = xp.zeros(count, dtype=np.int32)
    for j in range(k):
        p = j + xp.argmax(xp.abs(a[:, j:, j]), axis=1) if pivot else xp.full(count, j)
        pivots[:, j] = (p + 1).astype(np.int32)
        row_j, row_p = a[rows, j].copy(), a[rows, p].copy()
        a[rows, j], a[rows, p] = row_p, row_j
        perm_j, perm_p = perm[rows, j].copy(), perm[rows, p].copy()
        perm[rows, j], perm[rows, p] = perm_p, perm_j
        diag = a[:, j, j]
        zero = diag == 0
        info = xp.where(zero & (info == 0), j + 1, info).astype(np.int32)
        if j + 1 < m:
            scale = xp.where(zero, 1, diag)[:, None]
            a[:, j + 1:, j] = xp.where(zero[:, None], a[:, j + 1:, j], a[:, j + 1:, j] / scale)
            if j + 1 < n:
                a[:, j + 1:, j + 1:] -= a[:, j + 1:, j:j + 1] * a[:, j:j + 1, j + 1:]
    return (a.reshape(data.shape), pivots.reshape((*batch, k)), perm.reshape((*batch, m)),
            info.reshape(batch))


def _unpack_arrays(packed, perm, xp):
    m, n = packed.shape[-2:]
    k = min(m, n)
    L = xp.tril(packed[..., :, :k], -1) + xp.eye(m, k, dtype=packed.dtype)
    U = xp.triu(packed[..., :k, :])
    P = xp.swapaxes(xp.eye(m, dtype=packed.dtype)[perm], -1, -2)
    return P, L, U


def _square_backward(L: Tensor, U: Tensor, gL: Tensor, gU: Tensor) -> Tensor:
    """L^-T [tril_-1(L^T gL) + triu(gU U^T)] U^-T, in the coordinates of P^T A."""
    inner = matmul(L.mT, gL).tril(-1) + matmul(gU, U.mT).triu()
    inner = solve_triangular(U.mT, inner, upper=False, left=False)
    return solve_triangular(L.mT, inner, upper=True, unitriangular=True)


class LU(Function):
    @staticmethod
    def forward(ctx, A, pivot):
        xp = A._device.xp
        packed, _, perm, _ = _getrf(A._data, xp, pivot)
        P, L, U = (like(x, A) for x in _unpack_arrays(packed, perm, xp))
        ctx.mark_non_differentiable(P)
        ctx.save_for_backward(P, L, U)
        return P, L, U

    @staticmethod
    def backward(ctx, gP, gL, gU):
        P, L, U = ctx.saved_tensors
        m, k = L._data.shape[-2:]
        n = U._data.shape[-1]
        if m > k:  # tall: the rows below the square block only depend on U through L2 U
            L1, L2 = L[..., :k, :], L[..., k:, :]
            g2 = solve_triangular(U.mT, gL[..., k:, :], upper=False, left=False)
            g1 = _square_backward(L1, U, gL[..., :k, :], gU - matmul(L2.mT, g2))
            grad = cat([g1, g2], -2)
        elif n > k:  # wide: the columns right of the square block only feed U2
            U1, U2 = U[..., :, :k], U[..., :, k:]
            g2 = solve_triangular(L.mT, gU[..., :, k:], upper=True, unitriangular=True)
            g1 = _square_backward(L, U1, gL - matmul(g2, U2.mT), gU[..., :, :k])
            grad = cat([g1, g2], -1)
        else:
            grad = _square_backward(L, U, gL, gU)
        return matmul(P, grad), None


def lu(A: Tensor, *, pivot: bool = True, out=None) -> LUResult:
    """``(P, L, U)`` with A = P L U: P a permutation, L unit lower (m, k), U upper (k, n), k = min(m, n)."""
    _no_out(out)
    check_matrix("linalg.lu", A)
    P, L, U = LU.apply(A, bool(pivot))
    return LUResult(P, L, U)


def _pack(L: Tensor, U: Tensor) -> Tensor:
    """The compact LU matrix (L below the diagonal, U on and above), differentiable."""
    m, k = L._data.shape[-2:]
    n = U._data.shape[-1]
    lower = L.tril(-1)
    if m > k:
        return lower + cat([U, U[..., :1, :].expand(*U.shape[:-2], m - k, n) * 0], -2)
    if n > k:
        return cat([lower, lower[..., :, :1].expand(*L.shape[:-2], m, n - k) * 0], -1) + U
    return lower + U


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False, out=None) -> LUFactorExResult:
    """``(LU, pivots, info)``: the compact factorization, LAPACK's 1-based pivots and ``info`` (first zero of U)."""
    _no_out(out)
    check_matrix("linalg.lu_factor_ex", A)
    xp = A._device.xp
    packed, pivots, _, info = _getrf(A._data, xp, bool(pivot))
    infos = np.asarray(info.get() if hasattr(info, "get") else info)
    if check_errors and infos.any():
        _raise_zero_pivot("torch.linalg.lu_factor_ex", infos)
    if A._requires_grad:
        _, L, U = LU.apply(A, bool(pivot))
        packed_t = _pack(L, U)
    else:
        packed_t = like(packed, A)
    return LUFactorExResult(packed_t, like(pivots, A), like(info, A))


def _raise_zero_pivot(name: str, infos: np.ndarray) -> None:
    flat = infos.reshape(-1)
    index = int(np.flatnonzero(flat)[0])
    i = int(flat[index])
    raise RuntimeError(f"{name}: {batch_prefix(infos.shape, index)}U[{i},{i}] is zero and using it on lu_solve would "
                       "result in a division by zero. If you still want to perform the factorization, consider "
                       "calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")


def lu_factor(A: Tensor, *, pivot: bool = True, out=None) -> LUFactorResult:
    """``(LU, pivots)``: the compact LU factorization; an exactly singular A raises (see lu_factor_ex)."""
    _no_out(out)
    check_matrix("linalg.lu_factor", A)
    LU_t, pivots, info = lu_factor_ex(A, pivot=pivot)
    infos = np.asarray(info._data.get() if hasattr(info._data, "get") else info._data)
    if infos.any():
        _raise_zero_pivot("torch.linalg.lu_factor", infos)
    return LUFactorResult(LU_t, pivots)


def _permutation_from_pivots(pivots, m: int, xp):
    """Row order of P^T A from LAPACK's sequential row swaps."""
    host = np.asarray(pivots.get() if hasattr(pivots, "get") else pivots).astype(np.int64) - 1
    batch, k = host.shape[:-1], host.shape[-1]
    flat = host.reshape(-1, k)
    perm = np.broadcast_to(np.arange(m), (flat.shape[0], m)).copy()
    rows = np.arange(flat.shape[0])
    for j in range(k):
        p = flat[:, j]
        if ((p < j) | (p >= m)).any():
            raise RuntimeError("lu_unpack: pivots must be LAPACK's 1-based row indices, each in [j + 1, m] at step j")
        perm_j, perm_p = perm[rows, j].copy(), perm[rows, p].copy()
        perm[rows, j], perm[rows, p] = perm_p, perm_j
    return xp.asarray(perm.reshape((*batch, m)))


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True, unpack_pivots: bool = True,
              *, out=None) -> LUUnpackResult:
    """``torch.lu_unpack``: (P, L, U) from ``lu_factor``'s compact result (differentiable in LU_data)."""
    _no_out(out)
    check_matrix("lu_unpack", LU_data, "LU_data")
    xp = LU_data._device.xp
    m, n = LU_data._data.shape[-2:]
    k = min(m, n)
    empty = like(xp.empty((0,), LU_data._data.dtype), LU_data)
    L = U = P = empty
    if unpack_data:
        from engine.linalg._common import eye_like

        eye = eye_like(m, LU_data)[:, :k]
        L = LU_data[..., :, :k].tril(-1) + eye
        U = LU_data[..., :k, :].triu()
    if unpack_pivots:
        perm = _permutation_from_pivots(LU_pivots._data, m, xp)
        P = like(xp.swapaxes(xp.eye(m, dtype=LU_data._data.dtype)[perm], -1, -2), LU_data)
    return LUUnpackResult(P, L, U)


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False,
             out=None) -> Tensor:
    """Solve ``A X = B`` from ``lu_factor(A)`` (``A^T X = B`` when ``adjoint``, ``X A = B`` when not ``left``)."""
    _no_out(out)
    check_matrix("linalg.lu_solve", LU, "LU", square=True)
    check_matrix("linalg.lu_solve", B, "B")
    check_same_dtype("linalg.lu_solve", LU, B)
    n = LU._data.shape[-1]
    if (B._data.shape[-2] if left else B._data.shape[-1]) != n:
        raise RuntimeError(f"linalg.lu_solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({'x'.join(map(str, LU.shape))} and "
                           f"{'x'.join(map(str, B.shape))})")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return lu_solve(LU, pivots, B.mT, left=True, adjoint=not adjoint).mT
    P, L, U = lu_unpack(LU, pivots)
    if not adjoint:  # X = U^-1 L^-1 P^T B
        Y = solve_triangular(L, matmul(P.mT, B), upper=False, unitriangular=True)
        return solve_triangular(U, Y, upper=True)
    # A^T = U^T L^T P^T: X = P L^-T U^-T B
    Y = solve_triangular(U.mT, B, upper=False)
    return matmul(P, solve_triangular(L.mT, Y, upper=True, unitriangular=True))
