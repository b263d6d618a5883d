"""Factorizations and what builds on them: cholesky, qr, eigh, svd, pinv, matrix_rank, lstsq.

Backward formulas are PyTorch's (FunctionsManual.cpp), written with engine ops so they can be
differentiated again.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.linalg._common import (
    CholeskyExResult,
    EighResult,
    LinAlgError,
    LstsqResult,
    QRResult,
    SVDResult,
    batch_prefix,
    check_matrix,
    check_same_dtype,
    diag_embed,
    eps_of,
    eye_like,
    like,
)
from engine.linalg.solvers import _no_out, solve_triangular
from engine.ops.linalg import matmul
from engine.tensor import Tensor


# ----- cholesky --------------------------------------------------------------------------------------
def _cholesky_infos(data) -> np.ndarray:
    """potrf's ``info`` per matrix: the order of the first leading minor that is not positive-definite."""
    host = np.asarray(data.get() if hasattr(data, "get") else data, dtype=np.float64)
    flat = host.reshape((-1, *host.shape[-2:]))
    infos = np.zeros(flat.shape[0], np.int32)
    for i, m in enumerate(flat):
        for k in range(1, m.shape[-1] + 1):
            try:
                np.linalg.cholesky(m[:k, :k])
            except np.linalg.LinAlgError:
                infos[i] = k
                break
    return infos.reshape(host.shape[:-2])


def _raise_not_pd(name: str, infos: np.ndarray) -> None:
    flat = infos.reshape(-1)
    index = int(np.flatnonzero(flat)[0])
    raise LinAlgError(f"{name}: {batch_prefix(infos.shape, index)}The factorization could not be completed because "
                      f"the input is not positive-definite (the leading minor of order {int(flat[index])} is not "
                      "positive-definite).")


def _lower_factor(A: Tensor):
    """(L array or None, infos): the lower Cholesky factor, reading only A's lower triangle."""
    xp = A._device.xp
    data = xp.tril(A._data)
    data = data + xp.swapaxes(xp.tril(A._data, -1), -1, -2)  # symmetric from the lower triangle
    try:
        factor = xp.linalg.cholesky(data)
    except Exception as error:
        if type(error).__name__ != "LinAlgError":
            raise
        return None, _cholesky_infos(data)
    if not bool(xp.isfinite(factor).all()):  # CuPy reports failure as nan
        infos = _cholesky_infos(data)
        if infos.any():
            return None, infos
    return factor, np.zeros(A._data.shape[:-2], np.int32)


class Cholesky(Function):
    @staticmethod
    def forward(ctx, A, factor):
        L = like(factor, A)
        ctx.save_for_backward(L)
        return L

    @staticmethod
    def backward(ctx, gL):
        # gA = L^-T phi(L^T gL) L^-1, symmetrized (phi: lower triangle with the diagonal halved)
        (L,) = ctx.saved_tensors
        phi = matmul(L.mT, gL).tril()
        phi = phi - 0.5 * diag_embed_of_diagonal(phi)
        gA = solve_triangular(L.mT, phi, upper=True)
        gA = solve_triangular(L, gA, upper=False, left=False)
        return 0.5 * (gA + gA.mT), None


def diag_embed_of_diagonal(X: Tensor) -> Tensor:
    return X * eye_like(X._data.shape[-1], X)


def cholesky(A: Tensor, *, upper: bool = False, out=None) -> Tensor:
    """The Cholesky factor L (A = L L^T) of a symmetric positive-definite matrix; U = L^T when ``upper``."""
    _no_out(out)
    check_matrix("linalg.cholesky", A, square=True)
    factor, infos = _lower_factor(A)
    if factor is None:
        _raise_not_pd("linalg.cholesky", infos)
    L = Cholesky.apply(A, factor)
    return L.mT if upper else L


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False, out=None) -> CholeskyExResult:
    """``(L, info)``: ``info`` is 0 on success, else the order of the failing leading minor."""
    _no_out(out)
    check_matrix("linalg.cholesky_ex", A, square=True)
    factor, infos = _lower_factor(A)
    xp = A._device.xp
    if factor is None:
        if check_errors:
            _raise_not_pd("linalg.cholesky_ex", infos)
        L = like(_partial_cholesky(A._data, infos, xp), A)
    else:
        L = Cholesky.apply(A, factor)
    return CholeskyExResult(L.mT if upper else L, like(xp.asarray(infos), A))


def _partial_cholesky(data, infos, xp):
    """Per matrix: the factor where it exists; a failed one keeps LAPACK's partial result (leading block)."""
    flat = data.reshape((-1, *data.shape[-2:]))
    codes = infos.reshape(-1)
    out = xp.zeros_like(flat)
    for i in range(flat.shape[0]):
        k = int(codes[i])
        m = xp.tril(flat[i]) + xp.tril(flat[i], -1).T
        if k == 0:
            out[i] = xp.linalg.cholesky(m)
        elif k > 1:
            out[i, : k - 1, : k - 1] = xp.linalg.cholesky(m[: k - 1, : k - 1])
    return out.reshape(data.shape)


# ----- qr -------------------------------------------------------------------------------------------
class QR(Function):
    @staticmethod
    def forward(ctx, A, mode):
        q, r = A._device.xp.linalg.qr(A._data, mode=mode)
        Q, R = like(q, A), like(r, A)
        ctx.save_for_backward(Q, R)
        ctx.mode = mode
        return Q, R

    @staticmethod
    def backward(ctx, gQ, gR):
        Q, R = ctx.saved_tensors
        m, n = Q._data.shape[-2], R._data.shape[-1]
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        if m >= n:
            return _qr_backward_tall(gQ, gR, Q, R), None
        # wide: A = Q [X | Y] with X square; the Y part only feeds gQ
        X, gX = R[..., :, :m], gR[..., :, :m]
        Y, gY = R[..., :, m:], gR[..., :, m:]
        gQ = gQ + matmul(matmul(Q, Y), gY.mT)
        gU = _qr_backward_tall(gQ, gX, Q, X)
        from engine.ops.shape import cat

        return cat([gU, matmul(Q, gY)], -1), None


def _qr_backward_tall(gQ: Tensor, gR: Tensor, Q: Tensor, R: Tensor) -> Tensor:
    """gA = (gQ + Q copyltu(M)) R^-T with M = R gR^T - gQ^T Q (m >= n)."""
    M = matmul(R, gR.mT) - matmul(gQ.mT, Q)
    lower = M.tril(-1)
    copyltu = lower + lower.mT + diag_embed_of_diagonal(M)
    return solve_triangular(R.mT, gQ + matmul(Q, copyltu), upper=False, left=False)


def qr(A: Tensor, mode: str = "reduced", *, out=None) -> QRResult:
    """``(Q, R)`` with A = Q R; ``mode`` is 'reduced', 'complete' or 'r' (then Q is empty)."""
    _no_out(out)
    check_matrix("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
                           "'r', or 'complete'")
    if mode == "r":
        xp = A._device.xp
        r = xp.linalg.qr(A._data, mode="r")
        R = like(r, A)
        return QRResult(like(xp.empty((0,), A._data.dtype), A), R)
    Q, R = QR.apply(A, mode)
    return QRResult(Q, R)


# ----- eigh -----------------------------------------------------------------------------------------
class Eigh(Function):
    @staticmethod
    def forward(ctx, A, uplo):
        values, vectors = A._device.xp.linalg.eigh(A._data, UPLO=uplo)
        L, V = like(values, A), like(vectors, A)
        ctx.save_for_backward(L, V)
        return L, V

    @staticmethod
    def backward(ctx, gL, gV):
        L, V = ctx.saved_tensors
        VhgV = matmul(V.mT, gV)
        VhgV = 0.5 * (VhgV - VhgV.mT)
        E = L.unsqueeze(-2) - L.unsqueeze(-1)
        eye = eye_like(L._data.shape[-1], L)
        inner = VhgV / (E + eye) * (1 - eye) + diag_embed(gL)
        return matmul(matmul(V, inner), V.mT), None


class Eigvalsh(Function):
    @staticmethod
    def forward(ctx, A, uplo):
        values, vectors = A._device.xp.linalg.eigh(A._data, UPLO=uplo)
        ctx.save_for_backward(like(vectors, A))
        return like(values, A)

    @staticmethod
    def backward(ctx, gL):
        (V,) = ctx.saved_tensors
        return matmul(V * gL.unsqueeze(-2), V.mT), None


def _check_uplo(name: str, UPLO: str) -> str:
    if not isinstance(UPLO, str) or UPLO.upper() not in ("L", "U"):
        raise RuntimeError(f"{name}: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO.upper()


def eigh(A: Tensor, UPLO: str = "L", *, out=None) -> EighResult:
    """``(eigenvalues, eigenvectors)`` of a symmetric matrix, eigenvalues ascending; reads one triangle."""
    _no_out(out)
    check_matrix("linalg.eigh", A, square=True)
    L, V = Eigh.apply(A, _check_uplo("linalg.eigh", UPLO))
    return EighResult(L, V)


def eigvalsh(A: Tensor, UPLO: str = "L", *, out=None) -> Tensor:
    """The eigenvalues (ascending) of a symmetric matrix."""
    _no_out(out)
    check_matrix("linalg.eigvalsh", A, square=True)
    return Eigvalsh.apply(A, _check_uplo("linalg.eigvalsh", UPLO))


# ----- svd ------------------------------------------------------------------------------------------
class SVD(Function):
    @staticmethod
    def forward(ctx, A, full_matrices):
        u, s, vh = A._device.xp.linalg.svd(A._data, full_matrices=full_matrices)
        U, S, Vh = like(u, A), like(s, A), like(vh, A)
        ctx.save_for_backward(U, S, Vh)
        return U, S, Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        U, S, Vh = ctx.saved_tensors
        k = S._data.shape[-1]
        m, n = U._data.shape[-2], Vh._data.shape[-1]
        U, gU = U[..., :, :k], gU[..., :, :k]
        Vh, gVh = Vh[..., :k, :], gVh[..., :k, :]
        return _svd_backward(gU, gS, gVh, U, S, Vh, m, n), None


def _svd_backward(gU, gS, gVh, U, S, Vh, m: int, n: int) -> Tensor:
    """PyTorch's svd_backward (real case)."""
    V, gV = Vh.mT, gVh.mT
    UhgU = matmul(U.mT, gU)
    UhgU = UhgU - UhgU.mT
    VhgV = matmul(Vh, gV)
    VhgV = VhgV - VhgV.mT
    S2 = S * S
    eye = eye_like(S._data.shape[-1], S)
    E = S2.unsqueeze(-2) - S2.unsqueeze(-1) + eye
    off = (UhgU * S.unsqueeze(-2) + S.unsqueeze(-1) * VhgV) / E * (1 - eye)
    gA = off + diag_embed(gS)
    if m > n:
        gA = matmul(U, gA)
        gUSinv = gU / S.unsqueeze(-2)
        gA = gA + gUSinv - matmul(U, matmul(U.mT, gUSinv))
        return matmul(gA, Vh)
    if m < n:
        gA = matmul(gA, Vh)
        gVSinv = gV / S.unsqueeze(-2)
        gA = gA + gVSinv.mT - matmul(matmul(gVSinv.mT, V), Vh)
        return matmul(U, gA)
    return matmul(U, matmul(gA, Vh))


class Svdvals(Function):
    @staticmethod
    def forward(ctx, A):
        u, s, vh = A._device.xp.linalg.svd(A._data, full_matrices=False)
        ctx.save_for_backward(like(u, A), like(vh, A))
        return like(s, A)

    @staticmethod
    def backward(ctx, gS):
        U, Vh = ctx.saved_tensors
        return matmul(U * gS.unsqueeze(-2), Vh)


def svd(A: Tensor, full_matrices: bool = True, *, driver=None, out=None) -> SVDResult:
    """``(U, S, Vh)`` with A = U diag(S) Vh, singular values descending."""
    _no_out(out)
    check_matrix("linalg.svd", A)
    U, S, Vh = SVD.apply(A, bool(full_matrices))
    return SVDResult(U, S, Vh)


def svdvals(A: Tensor, *, driver=None, out=None) -> Tensor:
    """The singular values of A, descending."""
    _no_out(out)
    check_matrix("linalg.svdvals", A)
    return Svdvals.apply(A)


# ----- pinv / matrix_rank -------------------------------------------------------------------------------
def _tolerance(A: Tensor, atol, rtol, name: str):
    """PyTorch's threshold: max(atol, rtol * largest singular value); rtol defaults to eps * max(m, n)."""
    xp = A._device.xp

    def value(v):
        if v is None:
            return None
        return v._data if isinstance(v, Tensor) else v

    atol_v, rtol_v = value(atol), value(rtol)
    if rtol_v is None:
        positive_atol = atol_v is not None and bool(xp.any(xp.asarray(atol_v) > 0))
        rtol_v = 0.0 if positive_atol else eps_of(A) * max(A._data.shape[-2:])
    if atol_v is None:
        atol_v = 0.0
    return xp.asarray(atol_v, dtype=A._data.dtype), xp.asarray(rtol_v, dtype=A._data.dtype)


def _spectrum(A: Tensor, hermitian: bool):
    """(U, s, Vh) arrays with A = U diag(s) Vh; for hermitian A through eigh (s may be negative)."""
    xp = A._device.xp
    if hermitian:
        w, v = xp.linalg.eigh(A._data)
        return v, w, xp.swapaxes(v, -1, -2)
    return xp.linalg.svd(A._data, full_matrices=False)


class Pinv(Function):
    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        u, s, vh = _spectrum(A, hermitian)
        atol_v, rtol_v = _tolerance(A, atol, rtol, "linalg.pinv")
        magnitude = abs(s)
        top = magnitude.max(-1, keepdims=True) if s.shape[-1] else magnitude
        threshold = A._device.xp.maximum(atol_v[..., None] if atol_v.ndim else atol_v,
                                         (rtol_v[..., None] if rtol_v.ndim else rtol_v) * top)
        keep = magnitude > threshold
        with np.errstate(all="ignore"):
            inv_s = A._device.xp.where(keep, 1 / A._device.xp.where(keep, s, 1), 0).astype(s.dtype)
        xp = A._device.xp
        P = like(xp.swapaxes(vh, -1, -2) @ (inv_s[..., None] * xp.swapaxes(u, -1, -2)), A)
        ctx.save_for_backward(A, P)
        return P

    @staticmethod
    def backward(ctx, g):
        # dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P  (constant rank)
        A, P = ctx.saved_tensors
        m, n = A._data.shape[-2:]
        Pt = P.mT
        first = -matmul(matmul(Pt, g), Pt)
        left = eye_like(m, A) - matmul(A, P)
        right = eye_like(n, A) - matmul(P, A)
        second = matmul(matmul(left, g.mT), matmul(P, Pt))
        third = matmul(matmul(Pt, P), matmul(g.mT, right))
        return first + second + third, None, None, None


def pinv(A: Tensor, rcond=None, hermitian: bool = False, *, atol=None, rtol=None, out=None) -> Tensor:
    """The Moore-Penrose pseudo-inverse; singular values below max(atol, rtol * s_max) count as zero."""
    _no_out(out)
    check_matrix("linalg.pinv", A)
    if rcond is not None:
        if rtol is not None:
            raise RuntimeError("linalg.pinv: cannot pass both rcond and rtol")
        rtol = rcond
    if hermitian and A._data.shape[-1] != A._data.shape[-2]:
        check_matrix("linalg.pinv", A, square=True)
    return Pinv.apply(A, atol, rtol, bool(hermitian))


def matrix_rank(A: Tensor, tol=None, hermitian: bool = False, *, atol=None, rtol=None, out=None) -> Tensor:
    """The number of singular values above max(atol, rtol * s_max), as int64."""
    _no_out(out)
    check_matrix("linalg.matrix_rank", A)
    if tol is not None:
        atol, rtol = tol, 0.0
    xp = A._device.xp
    if hermitian:
        check_matrix("linalg.matrix_rank", A, square=True)
        s = xp.abs(xp.linalg.eigvalsh(A._data))
    else:
        s = xp.linalg.svd(A._data, compute_uv=False)
    atol_v, rtol_v = _tolerance(A, atol, rtol, "linalg.matrix_rank")
    if s.shape[-1] == 0:
        return like(xp.zeros(A._data.shape[:-2], np.int64), A)
    top = s.max(-1)
    threshold = xp.maximum(atol_v, rtol_v * top)
    return like((s > threshold[..., None]).sum(-1).astype(np.int64), A)


# ----- lstsq ----------------------------------------------------------------------------------------
_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A: Tensor, B: Tensor, rcond=None, *, driver=None) -> LstsqResult:
    """Least-squares solution of ``A X = B``: ``(solution, residuals, rank, singular_values)`` as in PyTorch.

    ``rank`` is computed for every driver but 'gels'; ``singular_values`` for 'gelsd' and 'gelss';
    ``residuals`` (squared 2-norm of each column of ``A X - B``) when m > n, every A has full rank and
    the driver is not 'gelsy' (the default).
    The solution is ``pinv(A) @ B`` (the minimum-norm least-squares solution), differentiable in A and B.
    """
    check_matrix("linalg.lstsq", A)
    check_matrix("linalg.lstsq", B, "B") if B._data.ndim >= 2 else None
    check_same_dtype("linalg.lstsq", A, B)
    driver = "gelsy" if driver is None else driver
    if driver not in _DRIVERS:
        raise RuntimeError(f"torch.linalg.lstsq: parameter `driver` should be one of {_DRIVERS}")
    vector = B._data.ndim == A._data.ndim - 1
    B2 = B.unsqueeze(-1) if vector else B
    m, n = A._data.shape[-2:]
    if B2._data.shape[-2] != m:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size(-2), but got {m} and "
                           f"{B2._data.shape[-2]}")
    rtol = rcond if rcond is not None and rcond >= 0 else eps_of(A) * max(m, n)
    xp = A._device.xp
    solution = matmul(pinv(A, rtol=rtol), B2)
    rank_t = matrix_rank(A.detach(), rtol=rtol)
    empty = like(xp.empty((0,), A._data.dtype), A)
    rank = rank_t if driver != "gels" else like(xp.empty((0,), np.int64), A)
    singular = svdvals(A.detach()) if driver in ("gelsd", "gelss") else empty
    if driver != "gelsy" and m > n and bool((rank_t._data == n).all()):
        residuals = ((matmul(A, solution) - B2) ** 2).sum(-2)
    else:
        residuals = empty
    if vector:
        solution = solution.squeeze(-1)
        if residuals._data.size:
            residuals = residuals.squeeze(-1)
    return LstsqResult(solution, residuals, rank, singular)
