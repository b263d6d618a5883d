"""``engine.backends.cuda``: CUDA kernel settings, as ``torch.backends.cuda``.

``matmul.allow_tf32`` (default False, as PyTorch since 1.12) and the reduced-precision-reduction switches are
accepted and remembered. CuPy's cuBLAS calls choose TF32 from the ``CUPY_TF32`` environment variable at import,
so setting the flag does not change the GPU's arithmetic here; scaled-dot-product attention has one (math)
kernel, so the ``enable_*_sdp`` switches are recorded the same way.

Example:
    >>> import engine
    >>> engine.backends.cuda.matmul.allow_tf32 = True
    >>> engine.backends.cuda.matmul.allow_tf32
    True
"""

from __future__ import annotations

from engine import backend

__all__ = ["enable_flash_sdp", "enable_math_sdp", "enable_mem_efficient_sdp", "flash_sdp_enabled", "is_built",
           "math_sdp_enabled", "matmul", "mem_efficient_sdp_enabled"]


class cuBLASModule:
    """``engine.backends.cuda.matmul``: only its known switches can be set, each a bool."""

    _FLAGS = {"allow_tf32": False, "allow_fp16_reduced_precision_reduction": True,
              "allow_bf16_reduced_precision_reduction": True}

    def __init__(self):
        for name, value in self._FLAGS.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        if name not in self._FLAGS:
            raise AttributeError(f"Unknown attribute {name}")
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return "<engine.backends.cuda.matmul " + ", ".join(f"{n}={getattr(self, n)}" for n in self._FLAGS) + ">"


matmul = cuBLASModule()
_sdp = {"flash": True, "mem_efficient": True, "math": True}


def is_built() -> bool:
    """Whether the engine can drive CUDA here (CuPy installed and a device present)."""
    return backend.cuda_available()


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = bool(enabled)


def math_sdp_enabled() -> bool:
    return _sdp["math"]


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = bool(enabled)
