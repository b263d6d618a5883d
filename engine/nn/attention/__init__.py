"""``engine.nn.attention``: the scaled-dot-product-attention backend selectors of ``torch.nn.attention``.

The engine has one attention implementation per device, so ``sdpa_kernel`` validates its backends and
otherwise changes nothing: code written for torch's selectors runs unchanged.

Example:
    >>> from engine.nn.attention import SDPBackend, sdpa_kernel
    >>> q = k = v = engine.randn(1, 2, 3, 4)
    >>> with sdpa_kernel(SDPBackend.MATH):
    ...     out = engine.nn.functional.scaled_dot_product_attention(q, k, v)
"""

from __future__ import annotations

import contextlib
from enum import IntEnum

__all__ = ["WARN_FOR_UNFUSED_KERNELS", "SDPBackend", "sdpa_kernel"]

WARN_FOR_UNFUSED_KERNELS = False


class SDPBackend(IntEnum):
    """The attention kernels torch can choose between (same names and values as ``torch.nn.attention``)."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """Context manager naming the SDPA backends to allow; accepted and checked, with no effect on the engine."""
    chosen = list(backends) if isinstance(backends, (list, tuple)) else [backends]
    if not chosen or not all(isinstance(b, SDPBackend) for b in chosen):
        raise ValueError("Backend must be an instance of SDPBackend or a list of SDPBackend instances")
    yield
