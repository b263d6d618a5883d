"""``engine.linalg``: PyTorch's ``torch.linalg`` on NumPy (CPU) and CuPy (GPU), with autograd.

Every function takes batches ``(..., m, n)`` wherever PyTorch does and has PyTorch's name,
signature, result tuple and error; only real (float32/float64) dtypes are supported.
Modules: ``solvers`` (inv, solve, solve_triangular, det, slogdet, matrix_exp), ``decompositions``
(cholesky, qr, eigh, svd, pinv, matrix_rank, lstsq), ``eig`` (eig, eigvals: complex results, complex
input accepted), ``ldl`` (ldl_factor, ldl_factor_ex, ldl_solve), ``lu_decomposition`` (lu, lu_factor, lu_solve),
``norms`` (vector_norm, matrix_norm, norm, cross, vander), ``products`` (multi_dot, matrix_power,
cond, householder_product ...) and ``toplevel`` (the ``torch.det`` / ``torch.svd`` / ``Tensor.inverse``
spellings). Each differentiable op is one autograd ``Function`` whose backward is PyTorch's formula
written with engine ops, so ``create_graph=True`` works through it.

Example:
    >>> import engine
    >>> A = engine.randn(3, 3, dtype=engine.float64, requires_grad=True)
    >>> engine.linalg.det(A).backward()
    >>> engine.allclose(A.grad, engine.linalg.det(A) * engine.linalg.inv(A).mT)
    True
"""

from engine.linalg._common import LinAlgError
from engine.linalg.decompositions import (
    cholesky,
    cholesky_ex,
    eigh,
    eigvalsh,
    lstsq,
    matrix_rank,
    pinv,
    qr,
    svd,
    svdvals,
)
from engine.linalg.eig import eig, eigvals
from engine.linalg.ldl import ldl_factor, ldl_factor_ex, ldl_solve
from engine.linalg.lu_decomposition import lu, lu_factor, lu_factor_ex, lu_solve
from engine.linalg.norms import cross, matrix_norm, norm, vander, vector_norm
from engine.linalg.products import (
    cond,
    diagonal,
    householder_product,
    matmul,
    matrix_power,
    multi_dot,
    tensorinv,
    tensorsolve,
    vecdot,
)
from engine.linalg.solvers import (
    det,
    inv,
    inv_ex,
    matrix_exp,
    slogdet,
    solve,
    solve_ex,
    solve_triangular,
)

__all__ = [
    "LinAlgError",
    "cholesky",
    "cholesky_ex",
    "cond",
    "cross",
    "det",
    "diagonal",
    "eig",
    "eigh",
    "eigvals",
    "eigvalsh",
    "householder_product",
    "inv",
    "inv_ex",
    "ldl_factor",
    "ldl_factor_ex",
    "ldl_solve",
    "lstsq",
    "lu",
    "lu_factor",
    "lu_factor_ex",
    "lu_solve",
    "matmul",
    "matrix_exp",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_ex",
    "solve_triangular",
    "svd",
    "svdvals",
    "tensorinv",
    "tensorsolve",
    "vander",
    "vecdot",
    "vector_norm",
]
