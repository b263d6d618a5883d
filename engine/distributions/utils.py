"""Helpers shared by the distributions (as ``torch.distributions.utils``)."""

from __future__ import annotations

import functools
import numbers

import engine
from engine.tensor import Tensor

euler_constant = 0.57721566490153286060


def broadcast_all(*values):
    """Broadcast numbers and tensors to one shape; numbers become tensors of the others' dtype/device."""
    if not all(isinstance(v, Tensor | numbers.Number) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number, torch.Tensor or objects "
                         "implementing __torch_function__.")
    if not all(isinstance(v, Tensor) for v in values):
        like = next((v for v in values if isinstance(v, Tensor)), None)
        dtype = like.dtype if like is not None else engine.get_default_dtype()
        device = like.device if like is not None else None
        values = tuple(v if isinstance(v, Tensor) else engine.tensor(v, dtype=dtype, device=device) for v in values)
    return engine.broadcast_tensors(*values)


def _standard_normal(shape, dtype, device):
    return engine.randn(tuple(shape), dtype=dtype, device=device)


def _sum_rightmost(value, dim: int):
    """Sum out the ``dim`` rightmost dimensions of ``value``."""
    if dim == 0:
        return value
    return value.reshape((*tuple(value.shape[:-dim]), -1)).sum(-1)


def clamp_probs(probs):
    eps = _eps(probs.dtype)
    return probs.clamp(min=eps, max=1 - eps)


def _eps(dtype) -> float:
    import numpy as np

    return float(np.finfo(dtype.np).eps)


def logits_to_probs(logits, is_binary: bool = False):
    if is_binary:
        return engine.sigmoid(logits)
    return engine.softmax(logits, dim=-1)


def probs_to_logits(probs, is_binary: bool = False):
    eps = _eps(probs.dtype)
    ps_clamped = probs.clamp(min=eps, max=1 - eps)
    if is_binary:
        return engine.log(ps_clamped) - engine.log1p(-ps_clamped)
    return engine.log(ps_clamped)


def tril_matrix_to_vec(mat, diag: int = 0):
    n = mat.shape[-1]
    rows, cols = engine.tril(engine.ones(n, n), diag).nonzero().unbind(-1)
    return mat[..., rows, cols]


class lazy_property:
    """A property computed once per instance on first access (as ``torch.distributions.utils.lazy_property``)."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        functools.update_wrapper(self, wrapped)  # type: ignore[arg-type]

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with engine.enable_grad():
            value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value


def vec_to_tril_matrix(vec, diag: int = 0):
    """The lower-triangular D x D matrix (below diagonal ``diag``) holding ``vec``'s last dimension in row order."""
    size = vec.shape[-1]
    n = round((-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * size + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2)
    rows, cols = engine.tril(engine.ones(n, n), diag).nonzero().unbind(-1)
    if rows.numel() != size:
        raise ValueError(f"The size of last dimension is {size} which cannot be expressed as the lower "
                         "triangular part of a square D x D matrix.")
    mat = engine.zeros((*tuple(vec.shape[:-1]), n, n), dtype=vec.dtype, device=vec.device)
    mat[..., rows, cols] = vec
    return mat
