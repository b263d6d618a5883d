"""Adamax: Adam with the infinity norm of past gradients in place of the second moment."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, bump_step, check_hyperparameters, prepared_grad, step_tensor
from engine.tensor import _make


class Adamax(Optimizer):
    """Adamax (Kingma & Ba), as ``torch.optim.Adamax``.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. betas: decay rates of the first moment and of the infinity norm.
        eps: added to the norm. weight_decay: L2 penalty. maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.Adamax(model.parameters(), lr=2e-3)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach=None, *, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        if not state:
            state["step"] = step_tensor()
            state["exp_avg"] = _make(xp.zeros_like(p._data), p._dtype, p._device)
            state["exp_inf"] = _make(xp.zeros_like(p._data), p._dtype, p._device)
        step = bump_step(state)
        g = prepared_grad(self, p, group)
        beta1, beta2 = group["betas"]
        exp_avg, exp_inf = state["exp_avg"]._data, state["exp_inf"]._data
        exp_avg += (g - exp_avg) * (1 - beta1)
        exp_inf *= beta2
        xp.maximum(exp_inf, xp.abs(g) + group["eps"], out=exp_inf)
        clr = group["lr"] / (1 - beta1 ** step)
        p._data -= clr * exp_avg / exp_inf
