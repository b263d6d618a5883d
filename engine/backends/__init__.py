"""``engine.backends``: settings of the kernel families behind the ops (``torch.backends``).

Submodules load on first use: ``engine.backends.quantized`` (the int8 engine), ``engine.backends.cuda``
(``matmul.allow_tf32`` ...) and ``engine.backends.cudnn`` (``benchmark``, ``deterministic`` ...).
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("cuda", "cudnn", "quantized")


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
