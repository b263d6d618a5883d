"""Quantized fused modules (``torch.ao.nn.intrinsic.quantized``)."""

from engine.ao.nn.quantized.modules import ConvReLU2d, LinearReLU

__all__ = ["ConvReLU2d", "LinearReLU"]
