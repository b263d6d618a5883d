"""``autocast``: a context manager / decorator that runs matmul-like ops in float16 or bfloat16."""

from __future__ import annotations

import functools
import warnings

from engine.amp import autocast_state

_SUPPORTED = {"cpu": ("bfloat16", "float16"), "cuda": ("float16", "bfloat16")}
_DEFAULT = {"cpu": "bfloat16", "cuda": "float16"}
_depth = [0]


class autocast:
    """Mixed precision: inside the region, matmul/linear/conv run in ``dtype`` and reductions, norms
    and losses in float32 (see ``engine.amp.autocast_state``).

    Args:
        device_type: ``"cpu"`` or ``"cuda"``; only tensors on that device type are cast.
        dtype: ``engine.float16`` or ``engine.bfloat16`` (default: float16 on CUDA, bfloat16 on CPU).
        enabled: False makes the region a no-op (and can switch autocast off inside another region).
        cache_enabled: cast each parameter once per region (default True).

    Example:
        >>> with engine.autocast("cpu", dtype=engine.bfloat16):
        ...     y = engine.ones(2, 3) @ engine.ones(3, 2)
        >>> y.dtype
        engine.bfloat16
    """

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled: bool | None = None):
        from engine.dtypes import as_dtype

        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type not in _SUPPORTED:
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device = device_type
        self.fast_dtype = as_dtype(dtype if dtype is not None else _DEFAULT[device_type])
        self._enabled = bool(enabled)
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        if self._enabled and self.fast_dtype.name not in _SUPPORTED[device_type]:
            warnings.warn(f"In {device_type} autocast, but the target dtype {self.fast_dtype} is not supported "
                          f"(use one of {', '.join(_SUPPORTED[device_type])}). Disabling autocast.",
                          UserWarning, stacklevel=2)
            self._enabled = False
        self._previous: list[tuple] = []

    def __enter__(self):
        dtype = self.fast_dtype if self._enabled else None
        self._previous.append(autocast_state.set_state(self.device, dtype, self._cache_enabled))
        _depth[0] += 1
        return self

    def __exit__(self, *exc) -> bool:
        dtype, cache_enabled = self._previous.pop()
        autocast_state.set_state(self.device, dtype, cache_enabled)
        _depth[0] -= 1
        if _depth[0] == 0:
            autocast_state.clear_cache()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)

        return wrapper


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether autocast is on for ``device_type`` right now."""
    return autocast_state.autocast_dtype(device_type) is not None


def get_autocast_dtype(device_type: str):
    """The dtype ``device_type`` autocasts to (its default when autocast is off)."""
    from engine.dtypes import as_dtype

    return autocast_state.autocast_dtype(device_type) or as_dtype(_DEFAULT[device_type])
