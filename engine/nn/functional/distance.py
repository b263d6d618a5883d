"""Vector similarity and normalization: normalize, cosine_similarity, pairwise_distance, pdist-style helpers."""

from __future__ import annotations

from engine.ops.loss import cosine_similarity
from engine.tensor import Tensor, wrap


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """input / max(||input||_p, eps) along ``dim``."""
    norm = input.norm(p, dim, keepdim=True).clamp(min=eps)
    return input / norm


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    from engine.ops.loss import _reduce

    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        from engine.ops.arithmetic import minimum

        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce((d_pos - d_neg + margin).clamp(min=0), reduction)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """p-norm distances between every pair of rows i < j of (N, M) ``input``, condensed to N(N-1)/2 values."""
    if input.dim() != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    n = input.shape[0]
    xp = input._device.xp
    rows, cols = xp.triu_indices(n, 1)
    left = input.index_select(0, wrap(rows.astype(xp.int64), input._device))
    right = input.index_select(0, wrap(cols.astype(xp.int64), input._device))
    return (left - right).norm(p, 1)


__all__ = ["cosine_similarity", "normalize", "pairwise_distance", "pdist", "triplet_margin_loss"]
