"""``cupy.linalg`` (fake): NumPy's linear algebra on fake device arrays."""

import numpy as _np

from fake_cupy._namespace import module_getattr as _module_getattr

__getattr__ = _module_getattr("cupy.linalg", _np.linalg, globals())
