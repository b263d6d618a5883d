"""``engine.finfo`` and ``engine.iinfo``: numerical limits of a dtype, with PyTorch's attribute names."""

from __future__ import annotations

import math

import numpy as np

from engine import dtypes


class finfo:
    """Limits of a floating-point dtype (the default dtype when none is given).

    Example:
        >>> engine.finfo(engine.float32).eps
        1.1920928955078125e-07
    """

    def __init__(self, type: dtypes.dtype | None = None):
        type = dtypes.get_default_dtype() if type is None else type
        if not isinstance(type, dtypes.dtype) or not (type.is_floating_point or type.is_complex):
            raise TypeError(f"finfo() requires a floating point input type. Use iinfo to handle '{type!r}'")
        real = type.to_real()
        if real.name == "bfloat16":
            import ml_dtypes  # NOTE: imported on first use, as engine.dtypes does

            info = ml_dtypes.finfo(real.np)
        else:
            info = np.finfo(real.np)
        self.bits = real.itemsize * 8
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        self.resolution = 10.0 ** -math.floor(-math.log10(self.eps))  # PyTorch's: 10**-precision
        self.dtype = real.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype."""

    def __init__(self, type: dtypes.dtype):
        if isinstance(type, dtypes.dtype) and type.name == "bool":
            raise TypeError("engine.bool is not supported by engine.iinfo")
        if not isinstance(type, dtypes.dtype) or type.is_floating_point or type.is_complex:
            raise TypeError(f"iinfo() requires an integer input type. Use finfo to handle '{type!r}'")
        info = np.iinfo(type.np)
        self.bits = type.itemsize * 8
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = type.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
