"""Fused float modules (``torch.ao.nn.intrinsic``) and their quantized forms (``.quantized``)."""

from engine import nn


class _FusedModule(nn.Sequential):
    """A Sequential of modules that quantize as one (conv or linear, then relu)."""


class ConvReLU2d(_FusedModule):
    """Conv2d followed by ReLU."""

    def __init__(self, conv, relu):
        super().__init__(conv, relu)


class LinearReLU(_FusedModule):
    """Linear followed by ReLU."""

    def __init__(self, linear, relu):
        super().__init__(linear, relu)


from engine.ao.nn.intrinsic import quantized  # noqa: E402 - after the float fused modules

__all__ = ["ConvReLU2d", "LinearReLU", "quantized"]
