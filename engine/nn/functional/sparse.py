"""embedding_bag: sums, means or maxima of bags of embeddings, without materialising each bag's rows."""

from __future__ import annotations

from engine.ops.arithmetic import where
from engine.ops.embedding import embedding
from engine.tensor import Tensor, _make, wrap


def _bags(input: Tensor, offsets, include_last_offset: bool):
    """Flat indices (L,) and the [start, end) of each bag as device arrays."""
    xp = input._device.xp
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences. However, found offsets of type Tensor")
        b, n = input.shape
        starts = xp.arange(b) * n
        return input.reshape(-1), starts, starts + n
    if input.dim() != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    if offsets.dim() != 1:
        raise ValueError("offsets has to be a 1D Tensor")
    if offsets._dtype.is_floating_point:
        raise RuntimeError(f"offsets must be an integer tensor, got {offsets._dtype}")
    off = offsets._data.astype(xp.int64)
    length = input.shape[0]
    if off.shape[0] and int(off[0]) != 0:
        raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                           f"position 0. However, got {int(off[0])}")
    if off.shape[0] > 1 and bool((off[1:] < off[:-1]).any()):
        raise RuntimeError("offsets must be non-decreasing")
    if off.shape[0] and int(off[-1]) > length:
        raise RuntimeError(f"offsets[-1] can not be greater than input's length {length}, but got {int(off[-1])}")
    if include_last_offset:
        if off.shape[0] < 1:
            raise RuntimeError("include_last_offset: number of offsets should be at least 1")
        off = off[:-1]  # as PyTorch: the last bag still runs to the end of ``input``
    return input, off, xp.concatenate([off[1:], xp.asarray([length], dtype=xp.int64)])


def embedding_bag(input: Tensor, weight: Tensor, offsets=None, max_norm=None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights=None, include_last_offset: bool = False, padding_idx=None) -> Tensor:
    """Reduce (sum / mean / max) the embeddings of each bag: 2-d ``input`` is one bag per row, 1-d ``input``
    is cut into bags at ``offsets``; ``padding_idx`` entries are left out (an empty bag gives zeros)."""
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, but got {mode}")
    if input._dtype.is_floating_point:
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input._dtype.name} instead")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                      f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
                                      "on GitHub.")
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(f"embedding_bag: If per_sample_weights ({tuple(per_sample_weights.shape)}) is not None, "
                             f"then it must have the same shape as the input ({tuple(input.shape)})")
    n_rows = weight.shape[0]
    if padding_idx is not None:
        if not -n_rows <= padding_idx < n_rows:
            raise AssertionError("padding_idx must be within the number of embeddings")
        padding_idx = padding_idx % n_rows
    flat, starts, ends = _bags(input, offsets, include_last_offset)
    xp = weight._device.xp
    rows = embedding(flat, weight, None, max_norm, norm_type, scale_grad_by_freq, sparse)  # (L, D)
    pos = xp.arange(flat.shape[0])
    member = (pos[None, :] >= starts[:, None]) & (pos[None, :] < ends[:, None])  # (B, L)
    if padding_idx is not None:
        member &= (flat._data != padding_idx)[None, :]
    dtype = weight._dtype
    if mode == "max":
        masked = where(wrap(member[:, :, None], weight._device), rows.unsqueeze(0), float("-inf"))
        best = masked.amax(1)
        empty = wrap(~member.any(axis=1)[:, None], weight._device)
        return where(empty, 0.0, best)
    m = member.astype(dtype.np)
    if mode == "mean":
        m = m / xp.maximum(m.sum(axis=1, keepdims=True), 1)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.reshape(-1, 1).to(dtype)
    return _make(m, dtype, weight._device) @ rows


__all__ = ["embedding_bag"]
