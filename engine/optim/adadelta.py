"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, bump_step, prepared_grad, step_tensor
from engine.tensor import _make


class Adadelta(Optimizer):
    """Adadelta (Zeiler), as ``torch.optim.Adadelta``.

    Args:
        params: parameters or parameter groups to optimize.
        lr: coefficient that scales delta before it is applied. rho: decay of the running averages.
        eps: added inside the square roots. weight_decay: L2 penalty. maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.Adadelta(model.parameters())  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0,
                 foreach=None, *, capturable: bool = False, maximize: bool = False, differentiable: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        if not state:
            state["step"] = step_tensor()
            state["square_avg"] = _make(xp.zeros_like(p._data), p._dtype, p._device)
            state["acc_delta"] = _make(xp.zeros_like(p._data), p._dtype, p._device)
        bump_step(state)
        g = prepared_grad(self, p, group)
        rho, eps = group["rho"], group["eps"]
        square_avg, acc_delta = state["square_avg"]._data, state["acc_delta"]._data
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        p._data -= group["lr"] * delta
