"""Embedding lookup (rows of a weight matrix by index) and its scatter-add backward; one_hot."""

from __future__ import annotations

from engine.autograd.function import Op
from engine.backend import index_add
from engine.tensor import Tensor, wrap


class Embedding(Op):
    """weight[indices]; the gradient of rows at ``padding_idx`` is zero."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx):
        ctx.meta = (weight._data.shape, padding_idx)
        ctx.indices = indices
        return weight._data[indices._data]

    @staticmethod
    def backward(ctx, g):
        shape, padding_idx = ctx.meta
        return EmbeddingBackward.apply(g, ctx.indices, shape, padding_idx), None, None

    def _release_extra(self) -> None:
        self.indices = None


class EmbeddingBackward(Op):
    """Scatter-add rows of ``g`` into a zero (num_embeddings, dim) matrix; linear in ``g``."""

    @staticmethod
    def forward(ctx, g, indices, shape, padding_idx):
        xp = g._device.xp
        idx = indices._data.reshape(-1)
        rows = g._data.reshape(-1, shape[1])
        out = xp.zeros(shape, dtype=g._data.dtype)
        index_add(xp, out, idx, rows)
        if padding_idx is not None:
            out[padding_idx] = 0
        ctx.indices = indices
        ctx.padding_idx = padding_idx
        return out

    @staticmethod
    def backward(ctx, gg):
        out = Embedding.apply(gg, ctx.indices, None)
        if ctx.padding_idx is not None:
            mask = wrap((ctx.indices._data != ctx.padding_idx)[..., None].astype(gg._dtype.np), gg._device)
            out = out * mask
        return out, None, None, None


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, dim) at integer ``input`` of any shape."""
    if input._dtype.is_floating_point:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input._dtype.name} instead")
    n = weight._data.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    if scale_grad_by_freq:
        raise NotImplementedError("embedding(scale_grad_by_freq=True) is not supported")
    # NOTE: one reduction and one scalar copy to the host (on CUDA too: an index out of range is an error, as in
    # PyTorch, never a silently wrong row)
    if input._data.size and bool(((input._data < 0) | (input._data >= n)).any()):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        renorm_rows_(weight, input, max_norm, norm_type)
    return Embedding.apply(weight, input, padding_idx)


def renorm_rows_(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the looked-up rows whose norm exceeds ``max_norm`` (torch.embedding_renorm_)."""
    xp = weight._device.xp
    rows = xp.unique(input._data.reshape(-1))
    data = weight._data
    norms = (xp.abs(data[rows]) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(data.dtype)
    data[rows] *= scale[:, None]
    weight._vc[0] += 1


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Integer class indices of any shape -> int64 one-hot vectors in a new last dim."""
    from engine.dtypes import int64

    if tensor._dtype.is_floating_point:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = tensor._device.xp
    data = tensor._data
    if num_classes == -1:
        if data.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(data.max()) + 1
    if data.size and (int(data.min()) < 0 or int(data.max()) >= num_classes):
        raise RuntimeError("Class values must be smaller than num_classes." if data.size and int(data.min()) >= 0
                           else "Class values must be non-negative.")
    out = (data[..., None] == xp.arange(num_classes)).astype(int64.np)
    return wrap(out, tensor._device)
