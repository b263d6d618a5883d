"""``torch.use_deterministic_algorithms``: with it on, an op whose result can change from run to run refuses
to run (or warns, with ``warn_only``). In the engine that is accumulation by atomic adds on the GPU
(``backend.index_add`` on floating CuDA arrays: scatter_add, index_add, indexing backward, embedding
backward); every CPU kernel is deterministic."""

from __future__ import annotations

import warnings

_state = {"mode": False, "warn_only": False}
_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms expects a bool, got {type(mode).__name__}")
    _state["mode"], _state["warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _state["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _state["warn_only"]


def set_deterministic_debug_mode(debug_mode) -> None:
    """0/"default": off; 1/"warn": on, warning only; 2/"error": on."""
    if isinstance(debug_mode, str):
        if debug_mode not in _DEBUG_MODES:
            raise RuntimeError(f"invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got "
                               f"{debug_mode}")
        debug_mode = _DEBUG_MODES[debug_mode]
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    if not _state["mode"]:
        return 0
    return 1 if _state["warn_only"] else 2


def alert_not_deterministic(caller: str) -> None:
    """Refuse (or warn about) ``caller`` when deterministic algorithms are required."""
    if not _state["mode"]:
        return
    message = (f"{caller} does not have a deterministic implementation, but you set "
               "'engine.use_deterministic_algorithms(True)'.")
    if _state["warn_only"]:
        warnings.warn(message, UserWarning, stacklevel=3)
    else:
        raise RuntimeError(message)
