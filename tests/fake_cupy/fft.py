"""``cupy.fft`` (fake): NumPy's FFTs on fake device arrays."""

import numpy as _np

from fake_cupy._namespace import module_getattr as _module_getattr

__getattr__ = _module_getattr("cupy.fft", _np.fft, globals())
