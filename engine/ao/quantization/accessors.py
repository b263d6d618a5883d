"""``torch.q_scale(t)``, ``t.int_repr()`` ...: the quantization parameters of a quantized tensor as functions,
and on ordinary tensors the error PyTorch gives (their quantized backend is the only one with these ops)."""

from __future__ import annotations

NAMES = ("q_scale", "q_zero_point", "q_per_channel_scales", "q_per_channel_zero_points", "q_per_channel_axis",
         "int_repr", "qscheme")


def _not_quantized(name: str):
    def method(self, *args, **kwargs):
        raise NotImplementedError(f"Could not run 'aten::{name}' with arguments from the "
                                  f"'{self.device.type.upper()}' backend: {name} needs a quantized tensor "
                                  "(engine.quantize_per_tensor / quantize_per_channel)")

    method.__name__ = name
    return method


def _function(name: str):
    def function(input):
        return getattr(input, name)()

    function.__name__ = name
    function.__doc__ = f"``input.{name}()`` (quantized tensors only)."
    return function


def install() -> dict:
    """Give ``Tensor`` the refusing methods (``QTensor`` overrides them); returns the torch-level functions."""
    from engine.tensor import Tensor

    for name in NAMES:
        setattr(Tensor, name, _not_quantized(name))
    return {name: _function(name) for name in NAMES if name != "qscheme"}
