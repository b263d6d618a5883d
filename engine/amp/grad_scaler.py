"""``GradScaler``: loss scaling for float16 training (skip steps whose gradients overflowed)."""

from __future__ import annotations

import warnings
from collections import defaultdict
from enum import Enum

import numpy as np


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh_state() -> dict:
    return {"stage": OptState.READY, "found_inf_per_device": {}}


class GradScaler:
    """Scale the loss so float16 gradients don't underflow; unscale before the optimizer steps.

    Steps whose gradients contain inf/NaN are skipped and the scale shrinks by ``backoff_factor``;
    after ``growth_interval`` clean steps it grows by ``growth_factor``.

    Example:
        >>> scaler = engine.amp.GradScaler("cpu")
        >>> scaler.scale(loss).backward()  # doctest: +SKIP
        >>> scaler.step(optimizer); scaler.update()  # doctest: +SKIP
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        from engine import backend

        self._device = device
        self._enabled = enabled
        if enabled and device == "cuda" and not backend.cuda_available():
            warnings.warn("engine.amp.GradScaler is enabled, but CUDA is not available. Disabling.",
                          UserWarning, stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise ValueError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise ValueError("The backoff factor must be < 1.0.")
        self._init_scale = init_scale
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._scale = None  # a float32 0-dim tensor, made on the device of the first scaled output
        self._growth_tracker = None
        self._per_optimizer_states: defaultdict = defaultdict(_fresh_state)

    # ----- scaling ----------------------------------------------------------------------------
    def scale(self, outputs):
        """Multiply a tensor (or tensors in lists/tuples/dicts) by the current scale."""
        if not self._enabled:
            return outputs
        from engine.tensor import Tensor

        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs.device)
            return outputs * self._scale.to(outputs.device)
        if isinstance(outputs, dict):
            return {k: self.scale(v) for k, v in outputs.items()}
        if isinstance(outputs, list | tuple):
            return type(outputs)(self.scale(v) for v in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def _lazy_init(self, device) -> None:
        from engine.creation import full

        self._scale = full((), self._init_scale, dtype="float32", device=device)
        self._growth_tracker = self._init_growth_tracker

    def _check_initialized(self, name: str) -> None:
        if self._scale is None:
            raise AssertionError(f"Attempted {name} but _scale is None. This may indicate your script did not use "
                                 "scaler.scale(loss or outputs) earlier in the iteration.")

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale in place (e.g. before gradient clipping)."""
        if not self._enabled:
            return
        self._check_initialized("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        inv_scale = (1.0 / self._scale.double()).float()  # on the scale's device: no host sync here
        state["found_inf_per_device"] = self._unscale_grads(optimizer, inv_scale)
        state["stage"] = OptState.UNSCALED

    def _unscale_grads(self, optimizer, inv_scale) -> dict:
        from engine.dtypes import float16

        found: dict = {}  # device -> 0-d bool array "some gradient there is inf/NaN", left on the device
        inv_by_device: dict = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if grad._dtype is float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                xp = grad._device.xp
                data = grad._data
                key = str(grad._device)
                nonfinite = xp.logical_not(xp.isfinite(data).all())
                found[key] = nonfinite if key not in found else xp.logical_or(found[key], nonfinite)
                if key not in inv_by_device:
                    inv_by_device[key] = inv_scale.to(grad._device)._data
                inv = inv_by_device[key]
                if data.flags.c_contiguous and getattr(data.flags, "writeable", True):
                    data *= inv.astype(data.dtype)
                    grad._vc[0] += 1
                else:  # a broadcast or read-only gradient view: replace it
                    grad._data = (data * inv).astype(data.dtype, copy=False)
        return found

    def step(self, optimizer, *args, **kwargs):
        """Unscale (unless done already) and call ``optimizer.step()`` unless gradients had inf/NaN."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_initialized("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if not state["found_inf_per_device"]:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        result = None
        if not sum(state["found_inf_per_device"].values()):
            result = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return result

    def update(self, new_scale=None) -> None:
        """Shrink the scale after a skipped step, grow it after ``growth_interval`` clean ones."""
        if not self._enabled:
            return
        self._check_initialized("update")
        if new_scale is not None:
            value = new_scale.item() if hasattr(new_scale, "item") else float(new_scale)
            self._scale._data[...] = value
        else:
            found = [v for s in self._per_optimizer_states.values() for v in s["found_inf_per_device"].values()]
            if not found:
                raise AssertionError("No inf checks were recorded prior to update.")
            self._update_scale(sum(found) > 0)
        self._per_optimizer_states = defaultdict(_fresh_state)

    def _update_scale(self, found_inf: bool) -> None:
        # NOTE: float32 arithmetic, as PyTorch's _amp_update_scale_ kernel does.
        scale = np.float32(self._scale.item())
        if found_inf:
            scale = np.float32(scale * np.float32(self._backoff_factor))
            self._growth_tracker = 0
        else:
            successful = self._growth_tracker + 1
            if successful == self._growth_interval:
                grown = np.float32(scale * np.float32(self._growth_factor))
                if np.isfinite(grown):
                    scale = grown
                self._growth_tracker = 0
            else:
                self._growth_tracker = successful
        self._scale._data[...] = scale

    # ----- accessors and state ------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale.item()

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else self._growth_tracker

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        """``{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}`` ({} if disabled)."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()`` output."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale._data[...] = self._init_scale
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker = self._init_growth_tracker
