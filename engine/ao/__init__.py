"""``engine.ao``: architecture optimisation (quantization), like ``torch.ao``."""

from engine.ao import nn, quantization

__all__ = ["nn", "quantization"]
