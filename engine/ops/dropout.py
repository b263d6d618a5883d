"""Dropout family: dropout (inverted scaling), dropout1d/2d (whole channels), alpha_dropout."""

from __future__ import annotations

from engine import random
from engine.autograd.function import Op
from engine.ops import cuda_kernels
from engine.tensor import Tensor, wrap


class MaskedScale(Op):
    """x * mask, with a precomputed (broadcastable) mask array; linear in x."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.mask = mask
        return x._data * mask

    @staticmethod
    def backward(ctx, g):
        return MaskedScale.apply(g, ctx.mask), None

    def _release_extra(self) -> None:
        self.mask = None


class FusedDropout(Op):
    """Dropout on the GPU in one kernel: the keep mask comes from the generator's counters, as ``_keep_mask``
    would draw it, and is applied in the same pass."""

    @staticmethod
    def forward(ctx, x, generator, p):
        out, ctx.mask = cuda_kernels.dropout(x._data, generator._key, generator.take_offset(x._data.size), p)
        return out

    @staticmethod
    def backward(ctx, g):
        return MaskedScale.apply(g, ctx.mask), None, None

    def _release_extra(self) -> None:
        self.mask = None


def _keep_mask(x: Tensor, p: float, shape: tuple):
    import numpy as np

    gen = random.generator_for(x._device)
    dtype = x._dtype.np
    uniform = gen.uniform_array(shape, np.float64 if dtype == np.float64 else np.float32)
    return ((uniform >= p) * (1.0 / (1.0 - p))).astype(dtype)


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) (training only)."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    if cuda_kernels.fusable(input._data):
        out = FusedDropout.apply(input, random.generator_for(input._device), float(p))
    else:
        out = MaskedScale.apply(input, _keep_mask(input, p, input._data.shape))
    if inplace:
        from engine.ops.inplace import copy_

        return copy_(input, out)
    return out


def _channel_dropout(input: Tensor, p: float, training: bool, inplace: bool, spatial: int) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    shape = input._data.shape
    batched = len(shape) == spatial + 2
    mask_shape = shape[:2] + (1,) * spatial if batched else shape[:1] + (1,) * spatial
    if p == 1.0:
        return input * 0.0
    out = MaskedScale.apply(input, _keep_mask(input, p, mask_shape))
    if inplace:
        from engine.ops.inplace import copy_

        return copy_(input, out)
    return out


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _channel_dropout(input, p, training, inplace, 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _channel_dropout(input, p, training, inplace, 2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _channel_dropout(input, p, training, inplace, 3)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout that keeps SELU's self-normalizing mean and variance."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    alpha_p = -1.7580993408473766
    keep = 1.0 - p
    a = (keep + alpha_p * alpha_p * keep * p) ** -0.5
    b = -a * alpha_p * p
    gen = random.generator_for(input._device)
    kept = gen.uniform_array(input._data.shape, input._dtype.np) >= p
    mask = wrap(kept.astype(input._dtype.np), input._device)
    return (input * mask + alpha_p * (1 - mask)) * a + b
