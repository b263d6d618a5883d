"""``engine.sparse`` (``torch.sparse``): COO sparse tensors, ``mm`` and ``sum``.

``engine.sparse_coo_tensor(indices, values, size)`` and ``dense.to_sparse()`` build a
``SparseCOOTensor``; ``engine.sparse.mm`` / ``engine.mm`` / ``@`` multiply it with a dense matrix, with
gradients to the dense operand and to the values (a sparse ``.grad`` on a sparse leaf), as PyTorch.
"""

from __future__ import annotations

from engine.sparse._coo import SparseCOOTensor, dense_to_sparse, guard_dense_methods, sparse_coo_tensor
from engine.sparse._layout import layout, sparse_coo, strided
from engine.sparse._matmul import SparseDenseMM
from engine.tensor import Tensor

__all__ = ["addmm", "mm", "sum"]


def _check_mm(sparse, dense) -> None:
    if not (isinstance(sparse, Tensor) and sparse.is_sparse):
        raise RuntimeError(f"sparse.mm: expected a sparse COO first operand, got layout {_layout_of(sparse)}")
    if not isinstance(dense, Tensor) or dense.is_sparse:
        raise NotImplementedError("sparse @ sparse is not supported in this engine; convert one side with "
                                  ".to_dense()")
    if sparse.sparse_dim() != 2 or sparse.dense_dim() != 0 or dense.dim() != 2:
        raise RuntimeError(f"mm: expected a 2-D sparse matrix and a 2-D dense matrix, got sizes "
                           f"{list(sparse.shape)} and {list(dense.shape)}")
    if sparse.shape[1] != dense.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sparse.shape[0]}x{sparse.shape[1]} and "
                           f"{dense.shape[0]}x{dense.shape[1]})")
    if sparse.dtype is not dense.dtype:
        raise RuntimeError(f"expected mat1 and mat2 to have the same dtype, but got: {sparse.dtype} != "
                           f"{dense.dtype}")
    if sparse.device != dense.device:
        raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                           f"{sparse.device} and {dense.device}!")


def _layout_of(t):
    return getattr(t, "layout", type(t).__name__)


def mm(mat1, mat2) -> Tensor:
    """``mat1 @ mat2`` for a sparse COO ``mat1`` and a dense ``mat2`` (as ``torch.sparse.mm``)."""
    _check_mm(mat1, mat2)
    idx = mat1._indices()
    return SparseDenseMM.apply(mat1._values(), mat2, idx[0], idx[1], mat1.shape[0])


def matmul(input, other) -> Tensor:
    """``engine.matmul`` / ``@`` when an operand is sparse: sparse @ dense matrix or vector."""
    if isinstance(other, Tensor) and not other.is_sparse and other.dim() == 1 and input.is_sparse:
        return mm(input, other.unsqueeze(1)).squeeze(1)
    if input.is_sparse:
        return mm(input, other)
    if isinstance(other, Tensor) and other.is_sparse and other.sparse_dim() == 2 and input.dim() == 2:
        return mm(other.t(), input.t()).t()  # dense @ sparse = (sparse^T @ dense^T)^T
    raise RuntimeError(f"matmul: unsupported operands with layouts {_layout_of(input)} and {_layout_of(other)}")


def addmm(mat, mat1, mat2, *, beta=1.0, alpha=1.0) -> Tensor:
    """``beta * mat + alpha * (mat1 @ mat2)`` with a sparse ``mat1`` (as ``torch.sparse.addmm``)."""
    return mat * beta + mm(mat1, mat2) * alpha


def sum(input, dim=None, dtype=None):
    """Sum of a sparse tensor: a dense scalar without ``dim``; over ``dim`` a sparse tensor, or dense when
    every sparse dimension is summed (as ``torch.sparse.sum``)."""
    if not (isinstance(input, Tensor) and input.is_sparse):
        raise RuntimeError("sparse.sum: expected a sparse COO tensor")
    values = input._values() if dtype is None else input._values().to(dtype)
    if dim is None:
        return values.sum()
    dims = sorted({d % input.dim() for d in ((dim,) if isinstance(dim, int) else dim)})
    n_sparse = input.sparse_dim()
    dense_dims = [d - n_sparse + 1 for d in dims if d >= n_sparse]
    if dense_dims:
        values = values.sum(dense_dims)
    keep = [d for d in range(n_sparse) if d not in dims]
    size = [s for d, s in enumerate(input.shape) if d not in dims]
    if not keep:
        return values.sum(0)
    out = sparse_coo_tensor(input._indices()[keep], values, size)
    return out.coalesce()


def _tensor_layout(self) -> layout:
    return strided


def _tensor_to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
    return self if dtype is None else self.to(dtype)


def install_methods() -> None:
    """``Tensor.layout`` / ``to_sparse`` / ``to_dense``; dense-only methods refused on sparse tensors."""
    Tensor.layout = property(_tensor_layout)
    Tensor.to_sparse = dense_to_sparse
    Tensor.to_sparse_coo = lambda self: dense_to_sparse(self)
    Tensor.to_dense = _tensor_to_dense
    guard_dense_methods()


spmm = mm
__all__ += ["SparseCOOTensor", "layout", "matmul", "sparse_coo", "sparse_coo_tensor", "spmm", "strided"]
