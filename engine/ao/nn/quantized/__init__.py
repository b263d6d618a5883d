"""Statically quantized modules (``torch.ao.nn.quantized``) and the dynamic ones (``.dynamic``)."""

from engine.ao.nn.quantized import dynamic
from engine.ao.nn.quantized.functional_modules import FloatFunctional, QFunctional
from engine.ao.nn.quantized.modules import Conv2d, DeQuantize, Linear, MaxPool2d, Quantize, ReLU

__all__ = ["Conv2d", "DeQuantize", "FloatFunctional", "Linear", "MaxPool2d", "QFunctional", "Quantize", "ReLU",
           "dynamic"]
