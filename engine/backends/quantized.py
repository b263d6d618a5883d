"""``engine.backends.quantized``: which int8 kernel family quantized ops follow (``torch.backends.quantized``).

``engine.backends.quantized.engine`` is "x86" by default; setting it to "fbgemm", "qnnpack", "onednn"
or "none" changes what the dynamic quantized ops compute, as PyTorch's backends do: fbgemm and
x86 quantize activations over 7 bits (``reduce_range``), qnnpack and onednn over the full 8 bits,
and "none" has no quantized kernels at all.

Example:
    >>> import engine
    >>> engine.backends.quantized.engine = "qnnpack"
    >>> engine.backends.quantized.engine
    'qnnpack'
"""

from __future__ import annotations

import sys
import types

_SUPPORTED = ("qnnpack", "none", "onednn", "x86", "fbgemm")


class _QuantizedEngine(types.ModuleType):
    """The module itself: ``engine`` is a checked, settable property."""

    _engine = "x86"

    @property
    def engine(self) -> str:
        return type(self)._engine

    @engine.setter
    def engine(self, value: str) -> None:
        if value not in _SUPPORTED:
            raise RuntimeError(f"quantized engine {value} is not supported (supported: {', '.join(_SUPPORTED)})")
        type(self)._engine = value

    @property
    def supported_engines(self) -> list[str]:
        return list(_SUPPORTED)


def reduce_range() -> bool:
    """Whether dynamic quantization uses 7-bit activations (fbgemm / x86) under the current engine."""
    name = _QuantizedEngine._engine
    if name == "none":
        raise RuntimeError("Didn't find engine for operation quantized::linear_dynamic NoQEngine: set "
                           "engine.backends.quantized.engine to one of 'x86', 'fbgemm', 'qnnpack', 'onednn'")
    return name in ("x86", "fbgemm")


sys.modules[__name__].__class__ = _QuantizedEngine
