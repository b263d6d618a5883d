"""Adafactor: second moments kept as row and column factors (sublinear memory), relative step sizes."""

from __future__ import annotations

import numpy as np

from engine.optim.optimizer import Optimizer, bump_step, run_closure, step_tensor
from engine.tensor import _make


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern), as ``torch.optim.Adafactor`` (PyTorch's variant: ``lr`` caps the
    relative step size and scales the decoupled weight decay; ``eps[0]`` clamps the variance estimate).

    Args:
        params: parameters or parameter groups to optimize.
        lr: maximum relative step size. beta2_decay: decay rate of beta2 (``1 - t ** beta2_decay``).
        eps: (epsilon1, epsilon2); epsilon1 None means the dtype's machine epsilon.
        d: update clipping threshold. weight_decay: decoupled weight decay. maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.Adafactor(model.parameters())  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps: tuple = (None, 1e-3),
                 d: float = 1.0, weight_decay: float = 0.0, *, foreach=None, maximize: bool = False):
        if lr < 0.0:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if beta2_decay > 0.0:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and eps[0] < 0.0:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if eps[1] < 0.0:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if d < 1.0:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": tuple(eps), "d": d, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize}
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient once; ``closure`` re-evaluates the loss."""
        loss = run_closure(closure)
        for group in self.param_groups:
            eps1, eps2 = group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if eps1 is None:  # as PyTorch: the first parameter's dtype decides for the group
                    eps1 = float(np.finfo(p._data.dtype).eps)
                self._update_one(p, group, eps1, eps2)
                p._vc[0] += 1
        return loss

    def _update_one(self, p, group: dict, eps1: float, eps2: float) -> None:
        state = self.state[p]
        xp = p._device.xp
        data = p._data
        g = -p.grad._data if group["maximize"] else p.grad._data
        if not state:
            state["step"] = step_tensor()
            if g.ndim > 1:
                state["row_var"] = _make(xp.zeros((*g.shape[:-1], 1), dtype=g.dtype), p._dtype, p._device)
                state["col_var"] = _make(xp.zeros((*g.shape[:-2], 1, g.shape[-1]), dtype=g.dtype), p._dtype,
                                         p._device)
            else:
                state["variance"] = _make(xp.zeros_like(g), p._dtype, p._device)
        step = bump_step(state)
        lr = group["lr"]
        one_minus_beta2 = step ** group["beta2_decay"]
        rho = min(lr, 1 / (step ** 0.5))
        alpha = max(eps2, float(xp.sqrt(xp.sum(data * data))) / (data.size ** 0.5)) * rho
        if group["weight_decay"] != 0:
            data *= 1 - lr * group["weight_decay"]
        if g.ndim > 1:
            row_var, col_var = state["row_var"]._data, state["col_var"]._data
            row_var += (xp.mean(g * g, axis=-1, keepdims=True) - row_var) * one_minus_beta2
            col_var += (xp.mean(g * g, axis=-2, keepdims=True) - col_var) * one_minus_beta2
            estimate = xp.matmul(row_var, col_var)
            estimate /= xp.maximum(xp.mean(row_var, axis=-2, keepdims=True), eps1)
        else:
            variance = state["variance"]._data
            variance += (g * g - variance) * one_minus_beta2
            estimate = variance.copy()
        update = 1 / xp.sqrt(xp.maximum(estimate, eps1 * eps1)) * g
        denom = max(1.0, float(xp.sqrt(xp.sum(update * update))) / ((update.size ** 0.5) * group["d"]))
        data -= (alpha / denom) * update
