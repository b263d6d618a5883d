"""CuPy's optional submodules (``cupy.cuda.nvtx``, ``cupy.cuda.nccl``): present only where CuPy was built with them."""

from __future__ import annotations

import importlib

from engine import backend


def cupy_submodule(name: str):
    """``cupy.<name>`` of the CuPy in use, or None when it lacks it (or there is no CuPy)."""
    cp = backend._cupy()
    if cp is None:
        return None
    try:
        return importlib.import_module(f"{cp.__name__}.{name}")
    except ImportError:
        return None
