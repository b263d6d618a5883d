"""Quantized and fused modules (``engine.ao.nn.quantized``, ``.quantized.dynamic``, ``.intrinsic``)."""

from engine.ao.nn import intrinsic, quantized

__all__ = ["intrinsic", "quantized"]
