"""The ``torch.*`` spellings of linear algebra (``torch.det``, ``torch.svd``, ``Tensor.inverse`` ...).

They are thin adapters over ``engine.linalg`` with PyTorch's older signatures and result tuples
(``torch.svd`` returns V, not Vh; ``torch.triangular_solve`` takes ``b`` first ...).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.linalg import decompositions, norms, products, solvers
from engine.linalg import lu_decomposition as lu_module
from engine.linalg._common import check_matrix, check_tensor, like
from engine.ops.linalg import matmul
from engine.tensor import Tensor

SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])  # type: ignore[name-match]
SvdResult = namedtuple("svd", ["U", "S", "V"])  # type: ignore[name-match]
QrResult = namedtuple("qr", ["Q", "R"])  # type: ignore[name-match]
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])  # type: ignore[name-match]
GeqrfResult = namedtuple("geqrf", ["a", "tau"])  # type: ignore[name-match]

det = solvers.det
matrix_exp = solvers.matrix_exp
matrix_power = products.matrix_power
lu_unpack = lu_module.lu_unpack


def inverse(input: Tensor, *, out=None) -> Tensor:
    return solvers.inv(input, out=out)


def logdet(input: Tensor) -> Tensor:
    """log(det(A)): nan for a negative determinant, -inf for a zero one."""
    from engine.ops.unary import log

    sign, logabsdet = solvers.slogdet(input)
    with_sign = log(sign.detach())  # 0 for +1, nan for -1, -inf for 0
    return logabsdet + with_sign


def slogdet(input: Tensor, *, out=None) -> SlogdetResult:
    return SlogdetResult(*solvers.slogdet(input, out=out))


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    return decompositions.pinv(input, rtol=rcond)


def cholesky(input: Tensor, upper: bool = False, *, out=None) -> Tensor:
    return decompositions.cholesky(input, upper=upper, out=out)


def cholesky_solve(B: Tensor, L: Tensor, upper: bool = False, *, out=None) -> Tensor:
    """X with (L L^T) X = B (U^T U when ``upper``), from a Cholesky factor."""
    solvers._no_out(out)
    check_matrix("cholesky_solve", L, "L", square=True)
    check_matrix("cholesky_solve", B, "B")
    lower = L.mT if upper else L
    Y = solvers.solve_triangular(lower, B, upper=False)
    return solvers.solve_triangular(lower.mT, Y, upper=True)


def cholesky_inverse(L: Tensor, upper: bool = False, *, out=None) -> Tensor:
    """(L L^T)^-1 (U^T U when ``upper``) from a Cholesky factor."""
    from engine.linalg._common import eye_like

    solvers._no_out(out)
    check_matrix("cholesky_inverse", L, "L", square=True)
    identity = L * 0 + eye_like(L._data.shape[-1], L)
    return cholesky_solve(identity, L, upper)


def qr(input: Tensor, some: bool = True, *, out=None) -> QrResult:
    Q, R = decompositions.qr(input, "reduced" if some else "complete", out=out)
    return QrResult(Q, R)


def svd(input: Tensor, some: bool = True, compute_uv: bool = True, *, out=None) -> SvdResult:
    """(U, S, V) with A = U diag(S) V^T; without ``compute_uv`` U and V are zero-filled (m, m) and (n, n), as in PyTorch."""
    solvers._no_out(out)
    check_matrix("svd", input)
    if not compute_uv:
        xp = input._device.xp
        m, n = input._data.shape[-2:]
        S = decompositions.svdvals(input)
        batch = input._data.shape[:-2]
        zeros_u = xp.zeros((*batch, m, m), input._data.dtype)
        zeros_v = xp.zeros((*batch, n, n), input._data.dtype)
        return SvdResult(like(zeros_u, input), S, like(zeros_v, input))
    U, S, Vh = decompositions.svd(input, full_matrices=not some)
    return SvdResult(U, S, Vh.mT)


def lu(A: Tensor, pivot: bool = True, get_infos: bool = False, out=None):
    """``torch.lu``: (A_LU, pivots) or, with ``get_infos``, (A_LU, pivots, infos)."""
    solvers._no_out(out)
    LU, pivots, info = lu_module.lu_factor_ex(A, pivot=pivot)
    return (LU, pivots, info) if get_infos else (LU, pivots)


def lu_solve(b: Tensor, LU_data: Tensor, LU_pivots: Tensor, *, out=None) -> Tensor:
    return lu_module.lu_solve(LU_data, LU_pivots, b, out=out)


def triangular_solve(b: Tensor, A: Tensor, upper: bool = True, transpose: bool = False, unitriangular: bool = False,
                     *, out=None) -> TriangularSolveResult:
    """(X, A.clone()) with op(A) X = b, op(A) = A^T when ``transpose``; only A's triangle is read."""
    solvers._no_out(out)
    check_matrix("triangular_solve", A, "A", square=True)
    check_matrix("triangular_solve", b, "b")
    coefficient = A.mT if transpose else A
    X = solvers.solve_triangular(coefficient, b, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolveResult(X, A.clone())


def vander(x: Tensor, N=None, increasing: bool = False) -> Tensor:
    """``torch.vander``: columns x^(N-1), ..., x, 1 (reversed when ``increasing``) of a 1-D x."""
    from engine.creation import ones_like
    from engine.ops.shape import stack

    check_tensor("vander", x, "x")
    if x._data.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    N = x._data.shape[0] if N is None else N
    if N < 0:
        raise RuntimeError("N must be non-negative.")
    columns = [ones_like(x), x, *(x**k for k in range(2, N))][:N]
    if not columns:
        return x.unsqueeze(-1)[:, :0]
    result = stack(columns, -1)
    return result if increasing else result.flip(-1)


def cross(input: Tensor, other: Tensor, dim=None, *, out=None) -> Tensor:
    """``torch.cross``: ``dim`` defaults to the first dimension of size 3 (PyTorch's deprecated default)."""
    if dim is None:
        sizes = np.broadcast_shapes(tuple(input._data.shape), tuple(other._data.shape))
        dim = next((d for d, s in enumerate(sizes) if s == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return norms.cross(input, other, dim=dim, out=out)


def chain_matmul(*matrices, out=None) -> Tensor:
    solvers._no_out(out)
    if len(matrices) == 1:
        return matrices[0].clone()
    return products.multi_dot(matrices)


def geqrf(input: Tensor, *, out=None) -> GeqrfResult:
    """LAPACK's compact QR: (a, tau), Householder vectors below the diagonal of a (not differentiable)."""
    solvers._no_out(out)
    check_matrix("geqrf", input, "input")
    xp = input._device.xp
    h, tau = xp.linalg.qr(input._data, mode="raw")
    return GeqrfResult(like(xp.ascontiguousarray(xp.swapaxes(h, -1, -2)), input), like(tau, input))


def orgqr(input: Tensor, tau: Tensor) -> Tensor:
    return products.householder_product(input, tau)


def ormqr(input: Tensor, tau: Tensor, other: Tensor, left: bool = True, transpose: bool = False, *,
          out=None) -> Tensor:
    """Q @ other (Q^T when ``transpose``; other @ Q when not ``left``) for Q = H_1 ... H_k from geqrf."""
    from engine.ops.shape import cat

    solvers._no_out(out)
    check_matrix("ormqr", input, "input")
    m, n = input._data.shape[-2:]
    padded = input if n == m else cat([input, input[..., :, :1].expand(*input.shape[:-1], m - n) * 0], -1)
    Q = products.householder_product(padded, tau)
    Q = Q.mT if transpose else Q
    return matmul(Q, other) if left else matmul(other, Q)


TOP_LEVEL = ["chain_matmul", "cholesky", "cholesky_inverse", "cholesky_solve", "cross", "det", "geqrf", "inverse",
             "logdet", "lu", "lu_solve", "lu_unpack", "matrix_exp", "matrix_power", "orgqr", "ormqr", "pinverse", "qr",
             "slogdet", "svd", "triangular_solve", "vander"]


def _method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def install_methods() -> None:
    """``Tensor.det()``, ``Tensor.inverse()`` ... : the same functions with the tensor as first argument."""
    names = ["cholesky", "cholesky_inverse", "cholesky_solve", "cross", "det", "geqrf", "inverse", "logdet", "lu",
             "lu_solve", "matrix_exp", "matrix_power", "orgqr", "ormqr", "pinverse", "qr", "slogdet", "svd",
             "triangular_solve"]
    namespace = globals()
    for name in names:
        setattr(Tensor, name, _method(namespace[name]))
