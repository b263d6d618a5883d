"""Anomaly mode (as ``torch.autograd.anomaly_mode``): with it on, backward raises at the first node whose
gradient contains NaN, naming that node."""

from __future__ import annotations

import functools
import warnings

__all__ = ["detect_anomaly", "set_detect_anomaly"]


class _State:
    enabled = False
    check_nan = True


_state = _State()


def is_anomaly_enabled() -> bool:
    return _state.enabled


def is_anomaly_check_nan_enabled() -> bool:
    return _state.check_nan


def check_gradients(node, results) -> None:
    """Raise when a backward node returned NaN in one of its gradients (called by the traversal when enabled)."""
    if not (_state.enabled and _state.check_nan):
        return
    from engine.device import device_of_array

    for i, g in enumerate(results):
        array = getattr(g, "_data", g)
        if getattr(getattr(array, "dtype", None), "kind", "") not in ("f", "c"):
            continue
        if bool(device_of_array(array).xp.isnan(array).any()):
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")


class set_detect_anomaly:
    """Turn anomaly detection on or off (``mode``) for the ``with`` block, a function, or from the call on."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev, self.prev_check_nan = _state.enabled, _state.check_nan
        _state.enabled, _state.check_nan = bool(mode), bool(check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args) -> None:
        _state.enabled, _state.check_nan = self.prev, self.prev_check_nan


class detect_anomaly:
    """Context manager and decorator enabling anomaly detection (NaN gradients raise, naming the node)."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime and should only "
                      "be enabled for debugging.", stacklevel=2)

    def __enter__(self) -> None:
        self.prev, self.prev_check_nan = _state.enabled, _state.check_nan
        _state.enabled, _state.check_nan = True, self.check_nan

    def __exit__(self, *args) -> None:
        _state.enabled, _state.check_nan = self.prev, self.prev_check_nan

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__(self.check_nan):
                return func(*args, **kwargs)

        return wrapper
