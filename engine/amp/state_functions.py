"""PyTorch's functional autocast switches (``torch.set_autocast_enabled``, ``torch.get_autocast_cpu_dtype``,
``torch.clear_autocast_cache`` ...) over the one autocast state (``autocast_state``).

Each device type has an autocast dtype that is kept while its autocast is off (PyTorch's defaults: bfloat16
on the CPU, float16 on CUDA); enabling autocast turns it on with that dtype.
"""

from __future__ import annotations

from engine.amp import autocast_state
from engine.dtypes import as_dtype, bfloat16, float16

_preferred = {"cpu": bfloat16, "cuda": float16}
_nesting = [0]
_cache = {"enabled": True}


def _device_type(device_type) -> str:
    if not isinstance(device_type, str):
        raise TypeError(f"device_type must be a str such as 'cpu' or 'cuda', got {type(device_type).__name__}")
    return device_type


def is_autocast_enabled_for(device_type: str = "cuda") -> bool:
    return autocast_state.autocast_dtype(_device_type(device_type)) is not None


def set_autocast_enabled(device_type, enabled=None) -> None:
    """``set_autocast_enabled(device_type, enabled)``, or the older ``set_autocast_enabled(enabled)`` (CUDA)."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    device_type = _device_type(device_type)
    dtype = _preferred.get(device_type, float16) if enabled else None
    autocast_state.set_state(device_type, dtype, _cache["enabled"])


def set_autocast_dtype(device_type: str, dtype) -> None:
    """The dtype ``device_type`` autocasts to (applied now if its autocast is on)."""
    device_type = _device_type(device_type)
    _preferred[device_type] = as_dtype(dtype)
    if is_autocast_enabled_for(device_type):
        autocast_state.set_state(device_type, _preferred[device_type], _cache["enabled"])


def get_autocast_dtype_for(device_type: str):
    return autocast_state.autocast_dtype(device_type) or _preferred.get(device_type, float16)


def get_autocast_cpu_dtype():
    return get_autocast_dtype_for("cpu")


def get_autocast_gpu_dtype():
    return get_autocast_dtype_for("cuda")


def set_autocast_cpu_dtype(dtype) -> None:
    set_autocast_dtype("cpu", dtype)


def set_autocast_gpu_dtype(dtype) -> None:
    set_autocast_dtype("cuda", dtype)


def is_autocast_cpu_enabled() -> bool:
    return is_autocast_enabled_for("cpu")


def set_autocast_cpu_enabled(enabled: bool) -> None:
    set_autocast_enabled("cpu", enabled)


def is_autocast_cache_enabled() -> bool:
    return _cache["enabled"]


def set_autocast_cache_enabled(enabled: bool) -> None:
    """Whether autocast casts each parameter once per region (and reuses it) or at every use."""
    _cache["enabled"] = bool(enabled)
    for device_type in list(autocast_state._cache_enabled):
        autocast_state._cache_enabled[device_type] = bool(enabled)


def clear_autocast_cache() -> None:
    autocast_state.clear_cache()


def autocast_increment_nesting() -> int:
    """Count one more entered autocast region; returns the depth (as PyTorch's C++ counter)."""
    _nesting[0] += 1
    return _nesting[0]


def autocast_decrement_nesting() -> int:
    """Count one region left; at depth 0 the cast cache is cleared, as when autocast's outer region exits."""
    _nesting[0] = max(_nesting[0] - 1, 0)
    if _nesting[0] == 0:
        autocast_state.clear_cache()
    return _nesting[0]
