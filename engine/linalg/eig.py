"""The general (non-symmetric) eigendecomposition: eig and eigvals, complex results as LAPACK's geev.

Eigenvectors have unit Euclidean norm (geev's normalisation, as PyTorch); like PyTorch they are
unique only up to each column's phase. The backward is PyTorch's ``linalg_eig_backward``, computed
on the backend's arrays (first order: ``create_graph=True`` is not supported through it).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from engine.autograd.function import Function
from engine.autograd.grad_mode import is_grad_enabled
from engine.linalg._common import check_matrix, like
from engine.linalg.solvers import _no_out
from engine.tensor import Tensor

EigResult = namedtuple("linalg_eig", ["eigenvalues", "eigenvectors"])  # type: ignore[name-match]


def _complex_dtype(A: Tensor):
    return A._dtype.to_complex().np if not A._dtype.is_complex else A._dtype.np


def _check_input(name: str, A) -> None:
    """A square (..., n, n) float32/float64/complex64/complex128 tensor."""
    if isinstance(A, Tensor) and A._dtype.is_complex:
        check_matrix(name, A.real, square=True)  # shape checks; complex is accepted here
    else:
        check_matrix(name, A, square=True)


class Eig(Function):
    @staticmethod
    def forward(ctx, A):
        xp = A._device.xp
        host = np.asarray(A._data.get() if hasattr(A._data, "get") else A._data)  # CuPy has no general eig
        values, vectors = np.linalg.eig(host)
        dtype = _complex_dtype(A)
        L, V = like(xp.asarray(values.astype(dtype)), A), like(xp.asarray(vectors.astype(dtype)), A)
        ctx.save_for_backward(L, V)
        ctx.real_input = not A._dtype.is_complex
        return L, V

    @staticmethod
    def backward(ctx, gL, gV):
        # gA = V^-H (diag(gL) + (V^H gV - V^H V diag(re(V^H gV))) / conj(E)) V^H, E_ij = L_j - L_i
        if is_grad_enabled():  # inside a create_graph=True backward
            raise RuntimeError("linalg.eig: create_graph=True (double backward) is not supported")
        L, V = ctx.saved_tensors
        xp = L._device.xp
        lam, vec = L._data, V._data
        vh = xp.conj(xp.swapaxes(vec, -1, -2))
        n = lam.shape[-1]
        eye = xp.eye(n, dtype=bool)
        g = xp.zeros(vec.shape, vec.dtype)
        if gV is not None:
            vhgv = vh @ gV._data
            diagonal = xp.diagonal(vhgv, 0, -2, -1)
            if not bool(xp.allclose(xp.imag(diagonal), 0, rtol=1e-2, atol=1e-2)):
                raise RuntimeError("linalg_eig_backward: The eigenvectors in the complex case are specified up to "
                                   "multiplication by e^{i phi}. The specified loss function depends on this "
                                   "quantity, so it is ill-defined.")
            diag_re = xp.real(diagonal)
            g = vhgv - vh @ (vec * diag_re[..., None, :])
            econj = xp.conj(lam[..., None, :] - lam[..., :, None])
            g = xp.where(eye, 0, g / xp.where(eye, 1, econj))
        if gL is not None:
            g = g + xp.where(eye, gL._data[..., None, :], 0)
        gA = xp.linalg.solve(vh, g @ vh)
        if ctx.real_input:
            gA = xp.real(gA)
        return like(gA, L)


def eig(A: Tensor, *, out=None) -> EigResult:
    """``(eigenvalues, eigenvectors)`` of a square matrix (batches ``(..., n, n)``), both complex.

    ``A @ V == V @ diag(L)``; each eigenvector column has unit norm and is defined up to a phase.
    """
    _no_out(out)
    _check_input("linalg.eig", A)
    L, V = Eig.apply(A)
    return EigResult(L, V)


def eigvals(A: Tensor, *, out=None) -> Tensor:
    """The (complex) eigenvalues of a square matrix; differentiable as ``eig(A).eigenvalues``."""
    _no_out(out)
    _check_input("linalg.eigvals", A)
    return eig(A).eigenvalues
