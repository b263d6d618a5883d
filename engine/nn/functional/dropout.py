"""feature_alpha_dropout: alpha dropout (SELU-preserving) of whole channels."""

from __future__ import annotations

from engine import random
from engine.ops.dropout import _check_p
from engine.tensor import Tensor, wrap

_ALPHA = 1.7580993408473766  # -SELU scale * alpha: the value SELU saturates to


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Alpha dropout with one keep/drop draw per (sample, channel): a dropped channel takes SELU's negative
    saturation value, and an affine map restores zero mean and unit variance."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    if input.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if p == 1.0:
        out = input * 0.0
    else:
        a = ((1.0 - p) * (1.0 + _ALPHA * _ALPHA * p)) ** -0.5
        shape = tuple(input.shape[:2]) + (1,) * (input.dim() - 2)
        gen = random.generator_for(input._device)
        kept = gen.uniform_array(shape, input._dtype.np) >= p
        mask = wrap(kept.astype(input._dtype.np), input._device)
        source = input.clone() if inplace and input.requires_grad else input
        out = source * (mask * a) + (mask - 1) * (_ALPHA * a) + _ALPHA * a * p
    if inplace:
        from engine.ops.inplace import copy_

        return copy_(input, out)
    return out


__all__ = ["feature_alpha_dropout"]
