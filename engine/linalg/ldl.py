"""LDL^T of symmetric indefinite matrices: ldl_factor, ldl_factor_ex, ldl_solve.

The factorization is LAPACK's unblocked Bunch-Kaufman ``sytf2`` on the lower triangle (what
PyTorch's ``sytrf`` call returns): ``LD`` holds the unit-lower L below the diagonal and the 1x1 /
2x2 blocks of D on it (upper triangle zero), ``pivots`` are 1-based, a 2x2 block's two entries both
``-p``. Only the lower triangle of A is read. ``ldl_solve`` is LAPACK's ``sytrs``. As in PyTorch,
neither is differentiable. The loops run per matrix on the host (NumPy).
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from engine.linalg._common import (
    LinAlgError,
    batch_prefix,
    check_matrix,
    check_same_dtype,
    check_tensor,
    like,
)
from engine.linalg.solvers import _no_out
from engine.tensor import Tensor

LDLFactorResult = namedtuple("linalg_ldl_factor", ["LD", "pivots"])  # type: ignore[name-match]
LDLFactorExResult = namedtuple("linalg_ldl_factor_ex", ["LD", "pivots", "info"])  # type: ignore[name-match]

_ALPHA = (1 + math.sqrt(17)) / 8  # Bunch-Kaufman's growth bound


def _host(data) -> np.ndarray:
    return np.asarray(data.get() if hasattr(data, "get") else data)


def _swap(a: np.ndarray, i, j) -> None:
    a[i], a[j] = a[j].copy(), a[i].copy()


def _sytf2_lower(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(LD, 1-based pivots, info) of one symmetric matrix, factorised in place from its lower triangle."""
    n = a.shape[0]
    ipiv = np.zeros(n, np.int32)
    info = 0
    k = 0
    while k < n:
        kstep, absakk = 1, abs(a[k, k])
        imax = k + 1 + int(np.argmax(np.abs(a[k + 1:, k]))) if k < n - 1 else k
        colmax = abs(a[imax, k]) if k < n - 1 else 0.0
        if max(absakk, colmax) == 0:
            info = info or k + 1
            kp = k
        else:
            if absakk >= _ALPHA * colmax:
                kp = k
            else:
                row = np.abs(a[imax, k:imax])
                rowmax = row.max()
                if imax < n - 1:
                    rowmax = max(rowmax, np.abs(a[imax + 1:, imax]).max())
                if absakk >= _ALPHA * colmax * (colmax / rowmax):
                    kp = k
                elif abs(a[imax, imax]) >= _ALPHA * rowmax:
                    kp = imax
                else:
                    kp, kstep = imax, 2
            kk = k + kstep - 1
            if kp != kk:  # interchange rows and columns kk and kp of the trailing submatrix
                if kp < n - 1:
                    a[kp + 1:, [kk, kp]] = a[kp + 1:, [kp, kk]]
                column = a[kk + 1:kp, kk].copy()
                a[kk + 1:kp, kk] = a[kp, kk + 1:kp]
                a[kp, kk + 1:kp] = column
                a[kk, kk], a[kp, kp] = a[kp, kp], a[kk, kk]
                if kstep == 2:
                    a[k + 1, k], a[kp, k] = a[kp, k], a[k + 1, k]
            if kstep == 1 and k < n - 1:
                x = a[k + 1:, k].copy()
                a[k + 1:, k + 1:] -= np.tril(np.outer(x, x)) / a[k, k]
                a[k + 1:, k] = x / a[k, k]
            elif kstep == 2 and k < n - 2:
                d21 = a[k + 1, k]
                d11, d22 = a[k + 1, k + 1] / d21, a[k, k] / d21
                d21 = (1 / (d11 * d22 - 1)) / d21
                c0, c1 = a[k + 2:, k].copy(), a[k + 2:, k + 1].copy()
                wk, wkp1 = d21 * (d11 * c0 - c1), d21 * (d22 * c1 - c0)
                a[k + 2:, k + 2:] -= np.tril(np.outer(c0, wk) + np.outer(c1, wkp1))
                a[k + 2:, k], a[k + 2:, k + 1] = wk, wkp1
        if kstep == 1:
            ipiv[k] = kp + 1
        else:
            ipiv[k] = ipiv[k + 1] = -(kp + 1)
        k += kstep
    return np.tril(a), ipiv, info


def _factor(name: str, A: Tensor, hermitian: bool):
    check_matrix(name, A, square=True)
    if not isinstance(hermitian, bool):
        raise TypeError(f"{name}(): argument 'hermitian' must be bool, not {type(hermitian).__name__}")
    data = _host(A._data)
    flat = data.reshape((-1, *data.shape[-2:]))
    results = [_sytf2_lower(np.tril(m).astype(data.dtype)) for m in flat]
    n, batch = data.shape[-1], data.shape[:-2]
    LD = np.stack([r[0] for r in results]) if results else np.zeros_like(flat)
    pivots = np.stack([r[1] for r in results]) if results else np.zeros((0, n), np.int32)
    info = np.array([r[2] for r in results], np.int32)
    xp = A._device.xp
    return (like(xp.asarray(LD.reshape(data.shape)), A), like(xp.asarray(pivots.reshape((*batch, n))), A),
            info.reshape(batch))


def ldl_factor_ex(A: Tensor, *, hermitian: bool = False, check_errors: bool = False, out=None) -> LDLFactorExResult:
    """``(LD, pivots, info)``: ``info`` is 0, or k when D's k-th diagonal block is exactly singular."""
    _no_out(out)
    LD, pivots, info = _factor("linalg.ldl_factor_ex", A, hermitian)
    if check_errors:
        _raise_on_info("linalg.ldl_factor_ex", info)
    return LDLFactorExResult(LD, pivots, like(A._device.xp.asarray(info), A))


def ldl_factor(A: Tensor, *, hermitian: bool = False, out=None) -> LDLFactorResult:
    """``(LD, pivots)`` with A = P L D L^T P^T (Bunch-Kaufman); raises when D is singular."""
    _no_out(out)
    LD, pivots, info = _factor("linalg.ldl_factor", A, hermitian)
    _raise_on_info("linalg.ldl_factor", info)
    return LDLFactorResult(LD, pivots)


def _raise_on_info(name: str, info: np.ndarray) -> None:
    flat = info.reshape(-1)
    if flat.any():
        index = int(np.flatnonzero(flat)[0])
        raise LinAlgError(f"{name}: {batch_prefix(info.shape, index)}The factorization could not be completed "
                          f"because the block diagonal matrix D is exactly singular (D[{int(flat[index])}] is zero).")


def _sytrs_lower(ld: np.ndarray, ipiv: np.ndarray, b: np.ndarray) -> np.ndarray:
    """X with A X = B, A given by one matrix's (LD, pivots)."""
    n, k = ld.shape[0], 0
    while k < n:  # L D Y = P^T B
        if ipiv[k] > 0:
            _swap(b, k, ipiv[k] - 1)
            b[k + 1:] -= np.outer(ld[k + 1:, k], b[k])
            b[k] /= ld[k, k]
            k += 1
        else:
            _swap(b, k + 1, -ipiv[k] - 1)
            b[k + 2:] -= np.outer(ld[k + 2:, k], b[k]) + np.outer(ld[k + 2:, k + 1], b[k + 1])
            akm1k = ld[k + 1, k]
            akm1, ak = ld[k, k] / akm1k, ld[k + 1, k + 1] / akm1k
            denom = akm1 * ak - 1
            bkm1, bk = b[k] / akm1k, b[k + 1] / akm1k
            b[k], b[k + 1] = (ak * bkm1 - bk) / denom, (akm1 * bk - bkm1) / denom
            k += 2
    k = n - 1
    while k >= 0:  # L^T P^T X = Y
        b[k] -= ld[k + 1:, k] @ b[k + 1:]
        if ipiv[k] > 0:
            _swap(b, k, ipiv[k] - 1)
            k -= 1
        else:
            b[k - 1] -= ld[k + 1:, k - 1] @ b[k + 1:]
            _swap(b, k, -ipiv[k] - 1)
            k -= 2
    return b


def ldl_solve(LD: Tensor, pivots: Tensor, B: Tensor, *, hermitian: bool = False, out=None) -> Tensor:
    """The solution X of A X = B from ``ldl_factor(A)``'s ``(LD, pivots)``; batch dimensions broadcast."""
    _no_out(out)
    name = "torch.linalg.ldl_solve"
    check_matrix(name, LD, "LD", square=True)
    check_tensor(name, pivots, "pivots")
    check_matrix(name, B, "B")
    check_same_dtype(name, LD, B)
    n = LD._data.shape[-1]
    if pivots._dtype.name != "int32":
        raise RuntimeError(f"{name}: Expected pivots to be integers. Got {pivots._dtype.name}")
    if tuple(pivots._data.shape) != tuple(LD._data.shape[:-1]):
        raise RuntimeError(f"{name}: Expected LD.shape[:-1] and pivots.shape to be the same, but got pivots "
                           f"with shape {tuple(pivots._data.shape)} instead")
    if B._data.shape[-2] != n:
        raise RuntimeError(f"{name}: Incompatible shapes of A and B for the equation AX = B "
                           f"({n}x{n} and {B._data.shape[-2]}x{B._data.shape[-1]})")
    ld, piv, b = _host(LD._data), _host(pivots._data), _host(B._data)
    batch = np.broadcast_shapes(ld.shape[:-2], b.shape[:-2])
    ld = np.broadcast_to(ld, (*batch, n, n)).reshape((-1, n, n))
    piv = np.broadcast_to(piv, (*batch, n)).reshape((-1, n))
    b = np.broadcast_to(b, (*batch, *b.shape[-2:])).reshape((-1, *b.shape[-2:]))
    x = np.stack([_sytrs_lower(ld[i], piv[i], b[i].copy()) for i in range(ld.shape[0])]) if ld.shape[0] else b
    return like(B._device.xp.asarray(x.reshape((*batch, *B._data.shape[-2:]))), B)
