"""The elementwise affine map (weight, bias) that the normalization layers share."""

from __future__ import annotations

from engine.creation import empty
from engine.nn import init
from engine.nn.modules.module import Module
from engine.nn.parameter import Parameter


def affine_parameters(module: Module, shape, *, affine: bool, bias: bool, device=None, dtype=None) -> None:
    """Register `weight` and `bias` of `shape` (uninitialised; see `affine_reset`), or None for those left out."""
    if affine:
        module.weight = Parameter(empty(shape, device=device, dtype=dtype))
        if bias:
            module.bias = Parameter(empty(shape, device=device, dtype=dtype))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def affine_reset(module: Module) -> None:
    """The identity map: weight ones, bias zeros (where the module has them)."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)
