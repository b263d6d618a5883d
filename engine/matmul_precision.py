"""``torch.set_float32_matmul_precision``: "highest" keeps float32 matmuls in float32, "high" and "medium"
allow TF32; as in PyTorch, the setting is the same switch as ``backends.cuda.matmul.allow_tf32``."""

from __future__ import annotations

from engine.backends import cuda

_PRECISIONS = ("highest", "high", "medium")
_state = {"precision": "highest"}


def set_float32_matmul_precision(precision: str) -> None:
    if precision not in _PRECISIONS:
        raise RuntimeError(f"Invalid float32 matmul precision {precision!r}: expected one of {_PRECISIONS}")
    _state["precision"] = precision
    cuda.matmul.allow_tf32 = precision != "highest"


def get_float32_matmul_precision() -> str:
    """The last precision set; "high" when TF32 was switched on through ``allow_tf32`` directly."""
    allowed = cuda.matmul.allow_tf32
    if allowed == (_state["precision"] != "highest"):
        return _state["precision"]
    return "high" if allowed else "highest"
