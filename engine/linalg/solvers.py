"""Inverses, solvers and determinants: inv, solve, solve_triangular, det, slogdet, matrix_exp.

Each differentiable op is one ``Function``: ``forward`` calls the backend's (NumPy/CuPy) LAPACK
routine on the arrays, ``backward`` is PyTorch's formula written with engine ops, so that
``create_graph=True`` differentiates it again.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.linalg._common import (
    InvExResult,
    LinAlgError,
    SlogdetResult,
    SolveExResult,
    batch_prefix,
    check_matrix,
    check_same_dtype,
    check_tensor,
    like,
)
from engine.ops import grad_math as gm
from engine.ops.linalg import matmul
from engine.tensor import Tensor


# ----- singularity --------------------------------------------------------------------------------
def _first_zero_pivot(matrix: np.ndarray) -> int:
    """1-based index of the first zero pivot of LU with partial pivoting (LAPACK getrf's ``info``); 0 if none."""
    u = np.array(matrix, dtype=np.float64)
    n = u.shape[-1]
    for k in range(n):
        p = k + int(np.argmax(np.abs(u[k:, k])))
        if u[p, k] == 0:
            return k + 1
        u[[k, p]] = u[[p, k]]
        u[k + 1:, k:] -= np.outer(u[k + 1:, k] / u[k, k], u[k, k:])
    return 0


def singular_infos(data) -> np.ndarray:
    """getrf's ``info`` per matrix of a batch (0: invertible), computed on the host."""
    host = np.asarray(data.get() if hasattr(data, "get") else data)
    batch = host.shape[:-2]
    flat = host.reshape((-1, *host.shape[-2:]))
    return np.array([_first_zero_pivot(m) for m in flat], dtype=np.int32).reshape(batch)


def _raise_singular(name: str, data, message: str) -> None:
    infos = singular_infos(data)
    bad = np.flatnonzero(infos.reshape(-1))
    index = int(bad[0]) if bad.size else 0
    pivot = int(infos.reshape(-1)[index]) if bad.size else 0
    prefix = batch_prefix(infos.shape, index)
    detail = message.format(pivot=pivot if pivot else "?")
    raise LinAlgError(f"{name}: {prefix}{detail}")


def _checked(name: str, A: Tensor, compute, message: str):
    """Run ``compute()``; a singular input (LAPACK error, or non-finite output from finite input) raises."""
    xp = A._device.xp
    try:
        out = compute()
    except np.linalg.LinAlgError:
        _raise_singular(name, A._data, message)
    except Exception as error:  # CuPy's own LinAlgError
        if type(error).__name__ != "LinAlgError":
            raise
        _raise_singular(name, A._data, message)
    first = out[0] if isinstance(out, tuple) else out
    if not bool(xp.isfinite(first).all()) and bool(xp.isfinite(A._data).all()):
        if singular_infos(A._data).any():
            _raise_singular(name, A._data, message)
    return out


_INV_MESSAGE = ("The diagonal element {pivot} is zero, the inversion could not be completed because the input "
                "matrix is singular.")
_SOLVE_MESSAGE = "The solver failed because the input matrix is singular."


# ----- inv -------------------------------------------------------------------------------------------
class Inv(Function):
    @staticmethod
    def forward(ctx, A):
        xp = A._device.xp
        out = like(_checked("linalg.inv", A, lambda: xp.linalg.inv(A._data), _INV_MESSAGE), A)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (inverse,) = ctx.saved_tensors
        inverse_t = inverse.mT
        return -matmul(matmul(inverse_t, g), inverse_t)


def inv(A: Tensor, *, out=None) -> Tensor:
    """The inverse of a square matrix (or of each matrix of a batch)."""
    _no_out(out)
    check_matrix("linalg.inv", A, square=True)
    return Inv.apply(A)


def inv_ex(A: Tensor, *, check_errors: bool = False, out=None) -> InvExResult:
    """``(inverse, info)``: ``info`` is 0 for an invertible matrix, else LAPACK's positive code."""
    _no_out(out)
    check_matrix("linalg.inv_ex", A, square=True)
    xp = A._device.xp
    infos = _infos(A, "inv")
    if check_errors and infos.any():
        _raise_singular("linalg.inv_ex", A._data, _INV_MESSAGE)
    if not infos.any():
        inverse = Inv.apply(A)
    else:
        with np.errstate(all="ignore"):
            data = _inverse_lenient(A._data, xp)
        inverse = like(data, A)
    return InvExResult(inverse, like(xp.asarray(infos), A))


def _infos(A: Tensor, kind: str) -> np.ndarray:
    """LAPACK-style ``info`` per matrix: 0 when the cheap check (finite inverse) passes."""
    xp = A._device.xp
    if A._data.size == 0:
        return np.zeros(A._data.shape[:-2], np.int32)
    with np.errstate(all="ignore"):
        try:
            ok = bool(xp.isfinite(xp.linalg.inv(A._data)).all())
        except Exception as error:  # a LinAlgError of NumPy or CuPy
            if type(error).__name__ != "LinAlgError":
                raise
            ok = False
    if ok:
        return np.zeros(A._data.shape[:-2], np.int32)
    return singular_infos(A._data)


def _inverse_lenient(data, xp):
    """Per-matrix inverse that leaves singular matrices as LAPACK leaves them (nan/inf), never raising."""
    flat = data.reshape((-1, *data.shape[-2:]))
    result = xp.empty_like(flat)
    for i in range(flat.shape[0]):
        try:
            result[i] = xp.linalg.inv(flat[i])
        except Exception as error:
            if type(error).__name__ != "LinAlgError":
                raise
            result[i] = xp.nan
    return result.reshape(data.shape)


# ----- solve ---------------------------------------------------------------------------------------
class Solve(Function):
    """X = A^-1 B for B of shape (..., n, k); batch dims broadcast."""

    @staticmethod
    def forward(ctx, A, B):
        xp = A._device.xp
        batch = np.broadcast_shapes(A._data.shape[:-2], B._data.shape[:-2])
        a = xp.broadcast_to(A._data, batch + A._data.shape[-2:])
        b = xp.broadcast_to(B._data, batch + B._data.shape[-2:])
        out = like(_checked("torch.linalg.solve", A, lambda: xp.linalg.solve(a, b), _SOLVE_MESSAGE), A)
        ctx.save_for_backward(A, out)
        ctx.shapes = (A._data.shape, B._data.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        A, X = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        grad_b = Solve.apply(A.mT, g)
        grad_a = -matmul(grad_b, X.mT) if ctx.needs_input_grad[0] else None
        return (gm.sum_to(grad_a, shape_a) if grad_a is not None else None,
                gm.sum_to(grad_b, shape_b) if ctx.needs_input_grad[1] else None)


def _is_vector_rhs(A: Tensor, B: Tensor) -> bool:
    """PyTorch's rule: B is a (batch of) vector(s) when 1-D, or when B.shape == A.shape[:-1]."""
    return B._data.ndim == 1 or (B._data.ndim == A._data.ndim - 1 and B._data.shape == A._data.shape[:-1])


def solve(A: Tensor, B: Tensor, *, left: bool = True, out=None) -> Tensor:
    """The solution X of ``A X = B`` (``X A = B`` when ``left=False``); batch dims broadcast."""
    _no_out(out)
    check_matrix("linalg.solve", A, square=True)
    check_tensor("linalg.solve", B, "B")
    check_same_dtype("linalg.solve", A, B)
    vector = _is_vector_rhs(A, B)
    n = A._data.shape[-1]
    if vector:
        if B._data.shape[-1] != n:
            raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                               f"{'AX = B' if left else 'XA = B'} ({_dims(A)} and {_dims(B)})")
        B2 = B.unsqueeze(-1) if left else B.unsqueeze(-2)
    else:
        B2 = B
        if B2._data.ndim < 2 or (B2._data.shape[-2] if left else B2._data.shape[-1]) != n:
            raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                               f"{'AX = B' if left else 'XA = B'} ({_dims(A)} and {_dims(B)})")
    try:
        np.broadcast_shapes(A._data.shape[:-2], B2._data.shape[:-2])
    except ValueError:
        raise RuntimeError(f"linalg.solve: the batch dimensions of A {tuple(A._data.shape[:-2])} and B "
                           f"{tuple(B2._data.shape[:-2])} cannot be broadcast") from None
    X = Solve.apply(A, B2) if left else Solve.apply(A.mT, B2.mT).mT
    if vector:
        X = X.squeeze(-1) if left else X.squeeze(-2)
    return X


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False, out=None) -> SolveExResult:
    """``(result, info)`` of :func:`solve`; a singular A gives a positive ``info`` instead of an error."""
    _no_out(out)
    check_matrix("linalg.solve_ex", A, square=True)
    infos = _infos(A, "solve")
    xp = A._device.xp
    if infos.any():
        if check_errors:
            _raise_singular("linalg.solve_ex", A._data, _SOLVE_MESSAGE)
        vector = _is_vector_rhs(A, B)
        with np.errstate(all="ignore"):
            inverse = like(_inverse_lenient(A._data, xp), A)
        B2 = B.detach()
        if left:
            result = matmul(inverse, B2.unsqueeze(-1)).squeeze(-1) if vector else matmul(inverse, B2)
        else:
            result = matmul(B2.unsqueeze(-2), inverse).squeeze(-2) if vector else matmul(B2, inverse)
        return SolveExResult(result, like(xp.asarray(infos), A))
    return SolveExResult(solve(A, B, left=left), like(xp.asarray(infos), A))


def _dims(t: Tensor) -> str:
    return "x".join(str(s) for s in t._data.shape)


# ----- solve_triangular ----------------------------------------------------------------------------
def _triangle(A: Tensor, upper: bool, unitriangular: bool):
    """The triangle of A that a triangular solve reads (unit diagonal when asked), as an array."""
    xp = A._device.xp
    data = xp.triu(A._data) if upper else xp.tril(A._data)
    if unitriangular:
        n = data.shape[-1]
        data = data.copy()
        index = xp.arange(n)
        data[..., index, index] = 1
    return data


class SolveTriangular(Function):
    """X = T^-1 B for the triangle T of A; batch dims broadcast."""

    @staticmethod
    def forward(ctx, A, B, upper, unitriangular):
        xp = A._device.xp
        T = _triangle(A, upper, unitriangular)
        batch = np.broadcast_shapes(A._data.shape[:-2], B._data.shape[:-2])
        t = xp.broadcast_to(T, batch + T.shape[-2:])
        b = xp.broadcast_to(B._data, batch + B._data.shape[-2:])
        out = like(_checked("linalg.solve_triangular", A, lambda: xp.linalg.solve(t, b), _SOLVE_MESSAGE), A)
        ctx.save_for_backward(A, out)
        ctx.meta = (upper, unitriangular, A._data.shape, B._data.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        A, X = ctx.saved_tensors
        upper, unitriangular, shape_a, shape_b = ctx.meta
        grad_b = SolveTriangular.apply(A.mT, g, not upper, unitriangular)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = -matmul(grad_b, X.mT)
            grad_a = grad_a.triu(1 if unitriangular else 0) if upper else grad_a.tril(-1 if unitriangular else 0)
            grad_a = gm.sum_to(grad_a, shape_a)
        return grad_a, gm.sum_to(grad_b, shape_b) if ctx.needs_input_grad[1] else None, None, None


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False,
                     out=None) -> Tensor:
    """Solve ``A X = B`` (``X A = B`` when ``left=False``) for a triangular A; only its triangle is read."""
    _no_out(out)
    check_matrix("linalg.solve_triangular", A, square=True)
    check_matrix("linalg.solve_triangular", B, "B")
    check_same_dtype("linalg.solve_triangular", A, B)
    n = A._data.shape[-1]
    if (B._data.shape[-2] if left else B._data.shape[-1]) != n:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({_dims(A)} and {_dims(B)})")
    if left:
        return SolveTriangular.apply(A, B, upper, unitriangular)
    return SolveTriangular.apply(A.mT, B.mT, not upper, unitriangular).mT


# ----- det / slogdet ----------------------------------------------------------------------------------
def _cofactor_via_svd(A: Tensor) -> Tensor:
    """The cofactor matrix adj(A)^T, valid for singular A too (PyTorch's fallback)."""
    xp = A._device.xp
    u, s, vh = xp.linalg.svd(A._data)
    n = s.shape[-1]
    others = xp.broadcast_to(s[..., None, :], (*s.shape, n)).copy()
    index = xp.arange(n)
    others[..., index, index] = 1
    adj_s = others.prod(-1)
    sign = xp.linalg.det(u) * xp.linalg.det(vh)
    return like((u * adj_s[..., None, :]) @ vh * sign[..., None, None], A)


class Det(Function):
    @staticmethod
    def forward(ctx, A):
        out = like(A._device.xp.linalg.det(A._data), A)
        ctx.save_for_backward(A, out)
        return out

    @staticmethod
    def backward(ctx, g):
        # d det(A) = det(A) tr(A^-1 dA); a singular A takes the cofactor matrix from its SVD instead
        A, det_a = ctx.saved_tensors
        if not bool((det_a == 0).any()):  # NOTE: det(A) * A^-1 of an exactly singular A would be 0 * inf
            try:
                return (g * det_a).unsqueeze(-1).unsqueeze(-1) * inv(A).mT
            except LinAlgError:
                pass
        return g.unsqueeze(-1).unsqueeze(-1) * _cofactor_via_svd(A.detach())


def det(A: Tensor, *, out=None) -> Tensor:
    """The determinant of a square matrix (or of each matrix of a batch)."""
    _no_out(out)
    check_matrix("linalg.det", A, square=True)
    return Det.apply(A)


class Slogdet(Function):
    @staticmethod
    def forward(ctx, A):
        sign, logabsdet = A._device.xp.linalg.slogdet(A._data)
        ctx.save_for_backward(A)
        sign_t = like(sign, A)
        ctx.mark_non_differentiable(sign_t)
        return sign_t, like(logabsdet, A)

    @staticmethod
    def backward(ctx, g_sign, g_logabsdet):
        (A,) = ctx.saved_tensors
        return g_logabsdet.unsqueeze(-1).unsqueeze(-1) * inv(A).mT


def slogdet(A: Tensor, *, out=None) -> SlogdetResult:
    """``(sign, logabsdet)``: the sign and the log of the absolute value of the determinant."""
    _no_out(out)
    check_matrix("linalg.slogdet", A, square=True)
    return SlogdetResult(*Slogdet.apply(A))


# ----- matrix_exp -----------------------------------------------------------------------------------
def _expm(data, xp):
    """exp of each matrix: scaling and squaring with a degree-18 Taylor polynomial (exact to rounding)."""
    if data.size == 0:
        return data.copy()
    norms = xp.abs(data).sum(-2).max(-1)  # the 1-norm bounds the spectral radius
    top = float(norms.max())
    squarings = max(0, int(np.ceil(np.log2(top / 0.5)))) if top > 0.5 else 0
    x = data / (2.0 ** squarings)
    n = data.shape[-1]
    eye = xp.broadcast_to(xp.eye(n, dtype=data.dtype), data.shape)
    result = eye.copy()
    term = eye.copy()
    for k in range(1, 19):
        term = term @ x / k
        result = result + term
    for _ in range(squarings):
        result = result @ result
    return result


class MatrixExp(Function):
    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        return like(_expm(A._data, A._device.xp).astype(A._data.dtype, copy=False), A)

    @staticmethod
    def backward(ctx, g):
        # PyTorch's rule for an analytic matrix function f: f([[A^T, G], [0, A^T]])[:n, n:]
        from engine.ops.shape import cat

        (A,) = ctx.saved_tensors
        n = A._data.shape[-1]
        a_t = A.mT
        zeros = a_t * 0
        block = cat([cat([a_t, g], -1), cat([zeros, a_t], -1)], -2)
        return MatrixExp.apply(block)[..., :n, n:]


def matrix_exp(A: Tensor) -> Tensor:
    """The matrix exponential of a square matrix (or of each matrix of a batch)."""
    check_matrix("linalg.matrix_exp", A, square=True)
    return MatrixExp.apply(A)


def _no_out(out) -> None:
    if out is not None:
        raise NotImplementedError("the out= argument of engine.linalg functions is not supported; "
                                  "use the returned tensor")
