"""Shared pieces of ``engine.linalg``: the error type, input checks, result tuples and small helpers."""

from __future__ import annotations

from collections import namedtuple

from engine.tensor import Tensor, wrap


class LinAlgError(RuntimeError):
    """A linear-algebra routine failed on its input (singular matrix, not positive-definite ...).

    As ``torch.linalg.LinAlgError``, it is a ``RuntimeError``.
    """


# torch.return_types.linalg_* (the names PyTorch gives them)
SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])  # type: ignore[name-match]
SVDResult = namedtuple("linalg_svd", ["U", "S", "Vh"])  # type: ignore[name-match]
QRResult = namedtuple("linalg_qr", ["Q", "R"])  # type: ignore[name-match]
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])  # type: ignore[name-match]
LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])  # type: ignore[name-match]
InvExResult = namedtuple("linalg_inv_ex", ["inverse", "info"])  # type: ignore[name-match]
CholeskyExResult = namedtuple("linalg_cholesky_ex", ["L", "info"])  # type: ignore[name-match]
SolveExResult = namedtuple("linalg_solve_ex", ["result", "info"])  # type: ignore[name-match]


def check_tensor(name: str, A, arg: str = "A") -> None:
    if not isinstance(A, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' must be Tensor, not {type(A).__name__}")


def check_floating(name: str, A: Tensor, arg: str = "input") -> None:
    if A._dtype.is_floating_point and A._dtype.itemsize < 4:
        raise RuntimeError(f"{name}: Low precision dtypes not supported. Got {'Half' if A._dtype.name == 'float16' else 'BFloat16'}")
    if not A._dtype.is_floating_point:
        dtype = A._dtype.name
        kind = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
                "bool": "Bool", "float16": "Half", "bfloat16": "BFloat16"}.get(dtype, dtype)
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as {arg}. Got {kind}")


def check_matrix(name: str, A, arg: str = "A", square: bool = False) -> None:
    """A (..., m, n) floating tensor (square when asked)."""
    check_tensor(name, A, arg)
    if A._data.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor {arg} must have at least 2 dimensions.")
    check_floating(name, A)
    if square and A._data.shape[-1] != A._data.shape[-2]:
        m, n = A._data.shape[-2:]
        raise RuntimeError(f"{name}: {arg} must be batches of square matrices, but they are {m} by {n} matrices")


def check_same_dtype(name: str, A: Tensor, B: Tensor) -> None:
    if A._dtype is not B._dtype:
        raise RuntimeError(f"{name}: Expected A and B to have the same dtype, but found A of type "
                           f"{A._dtype.name} and B of type {B._dtype.name} instead")


def batch_prefix(batch_shape: tuple, flat_index: int) -> str:
    """PyTorch's '(Batch element i): ' prefix for an error in one matrix of a batch."""
    return f"(Batch element {flat_index}): " if batch_shape else ""


def like(data, A: Tensor) -> Tensor:
    """Wrap an array computed from ``A`` (same device)."""
    return wrap(data, A._device)


def eye_like(n: int, A: Tensor) -> Tensor:
    from engine.creation import eye

    return eye(n, dtype=A._dtype, device=A._device)


def diag_embed(v: Tensor) -> Tensor:
    """(..., n) -> (..., n, n) with ``v`` on the diagonal (differentiable)."""
    return v.unsqueeze(-1) * eye_like(v._data.shape[-1], v)


def diagonal(A: Tensor) -> Tensor:
    """The main diagonal of the last two dims, (..., n, n) -> (..., n) (differentiable)."""
    return (A * eye_like(A._data.shape[-1], A)).sum(-1)


def eps_of(A: Tensor) -> float:
    import numpy as np

    return float(np.finfo(A._dtype.np).eps)
