"""``torch.cond``: run ``true_fn(*operands)`` or ``false_fn(*operands)`` as ``pred`` says (eagerly)."""

from __future__ import annotations

from engine.tensor import Tensor


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` (a bool or one-element tensor) holds, else ``false_fn(*operands)``."""
    if isinstance(pred, Tensor):
        if pred.numel() != 1:
            raise RuntimeError(f"Expected pred to be bool or single-element tensor, but got {pred}")
        pred = bool(pred.item())
    elif not isinstance(pred, bool | int):
        raise RuntimeError(f"Expected pred to be bool or tensor, but got {pred!r}")
    if not isinstance(operands, tuple | list):
        raise RuntimeError(f"Expected operands to be a tuple or list, but got {type(operands).__name__}")
    return (true_fn if pred else false_fn)(*operands)
