"""``engine.cuda.amp``: the CUDA spellings of ``engine.amp`` (``torch.cuda.amp.autocast`` / ``GradScaler``)."""

from __future__ import annotations

from engine.amp import GradScaler as _GradScaler
from engine.amp import autocast as _autocast


class autocast(_autocast):
    """``engine.amp.autocast("cuda", ...)``: float16 by default."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True):
        super().__init__("cuda", dtype=dtype if dtype is not None else "float16", enabled=enabled,
                         cache_enabled=cache_enabled)


class GradScaler(_GradScaler):
    """``engine.amp.GradScaler("cuda", ...)``."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True):
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval, enabled=enabled)


__all__ = ["GradScaler", "autocast"]
