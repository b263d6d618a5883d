"""RAdam: Adam with a rectified (variance-corrected) adaptive learning rate."""

from __future__ import annotations

from engine.optim.optimizer import (
    Optimizer,
    bump_step,
    check_hyperparameters,
    prepared_grad,
    step_tensor,
    zeros_state,
)


class RAdam(Optimizer):
    """RAdam (Liu et al.), as ``torch.optim.RAdam``; ``decoupled_weight_decay=True`` gives RAdamW.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. betas: decay rates of the moment averages. eps: added to the denominator.
        weight_decay: L2 penalty (decoupled when ``decoupled_weight_decay``). maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.RAdam(model.parameters(), lr=1e-3)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable, "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        data = p._data
        if not state:
            state["step"] = step_tensor()
            state["exp_avg"] = zeros_state(p)
            state["exp_avg_sq"] = zeros_state(p)
        step = bump_step(state)
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if group["decoupled_weight_decay"] and decay != 0:
            data *= 1 - lr * decay
            g = prepared_grad(self, p, {"maximize": group["maximize"]})
        else:
            g = prepared_grad(self, p, group)
        exp_avg, exp_avg_sq = state["exp_avg"]._data, state["exp_avg_sq"]._data
        exp_avg += (g - exp_avg) * (1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        corrected = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = (bias_correction2 ** 0.5) / (xp.sqrt(exp_avg_sq) + group["eps"])
            data -= corrected * lr * adaptive * rect
        else:
            data -= corrected * lr
