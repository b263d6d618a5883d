"""``cupy.lib.stride_tricks`` (fake): views of the wrapped NumPy array."""

import numpy as _np

from fake_cupy._namespace import module_getattr as _module_getattr

__getattr__ = _module_getattr("cupy.lib.stride_tricks", _np.lib.stride_tricks, globals())
