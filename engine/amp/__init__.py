"""Automatic mixed precision, as ``torch.amp``: ``autocast`` and ``GradScaler``.

Example:
    >>> scaler = engine.amp.GradScaler("cpu")
    >>> with engine.autocast("cpu", dtype=engine.bfloat16):  # doctest: +SKIP
    ...     loss = loss_fn(model(x), y)
    >>> scaler.scale(loss).backward(); scaler.step(opt); scaler.update()  # doctest: +SKIP
"""

from engine.amp import autocast_state
from engine.amp.autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from engine.amp.grad_scaler import GradScaler, OptState

__all__ = ["GradScaler", "OptState", "autocast", "autocast_state", "get_autocast_dtype", "is_autocast_enabled"]
