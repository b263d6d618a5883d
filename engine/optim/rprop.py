"""Rprop: per-coordinate step sizes grown or shrunk by the sign agreement of successive gradients."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, bump_step, prepared_grad, step_tensor
from engine.tensor import _make


class Rprop(Optimizer):
    """Resilient backpropagation (Riedmiller & Braun), as ``torch.optim.Rprop``.

    Args:
        params: parameters or parameter groups to optimize.
        lr: initial step size. etas: (decrease, increase) factors. step_sizes: (min, max) step size.
        maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.Rprop(model.parameters(), lr=1e-2)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-2, etas: tuple = (0.5, 1.2), step_sizes: tuple = (1e-6, 50), *,
                 capturable: bool = False, foreach=None, maximize: bool = False, differentiable: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": tuple(etas), "step_sizes": tuple(step_sizes), "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        if not state:
            state["step"] = step_tensor()
            state["prev"] = _make(xp.zeros_like(p._data), p._dtype, p._device)
            state["step_size"] = _make(xp.full_like(p._data, group["lr"]), p._dtype, p._device)
        bump_step(state)
        g = prepared_grad(self, p, {"maximize": group["maximize"]}).copy()
        etaminus, etaplus = group["etas"]
        step_min, step_max = group["step_sizes"]
        prev, step_size = state["prev"]._data, state["step_size"]._data
        agreement = xp.sign(g * prev)
        factor = xp.where(agreement > 0, etaplus, xp.where(agreement < 0, etaminus, 1.0)).astype(g.dtype)
        step_size *= factor
        xp.clip(step_size, step_min, step_max, out=step_size)
        g[factor == etaminus] = 0
        p._data -= xp.sign(g) * step_size
        prev[...] = g
