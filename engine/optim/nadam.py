"""NAdam: Adam with Nesterov momentum and a momentum-decay schedule."""

from __future__ import annotations

import numpy as np

from engine.optim.optimizer import (
    Optimizer,
    bump_step,
    check_hyperparameters,
    prepared_grad,
    step_tensor,
    zeros_state,
)


class NAdam(Optimizer):
    """NAdam (Dozat), as ``torch.optim.NAdam``; ``decoupled_weight_decay=True`` gives NAdamW.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. betas: decay rates of the moment averages. eps: added to the denominator.
        weight_decay: L2 penalty (decoupled when ``decoupled_weight_decay``). momentum_decay: psi.
        maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.NAdam(model.parameters(), lr=2e-3)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, momentum_decay=momentum_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        data = p._data
        if not state:
            state["step"] = step_tensor()
            state["mu_product"] = step_tensor(1.0)
            state["exp_avg"] = zeros_state(p)
            state["exp_avg_sq"] = zeros_state(p)
        step = bump_step(state)
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        if group["decoupled_weight_decay"] and decay != 0:
            data *= 1 - lr * decay
            g = prepared_grad(self, p, {"maximize": group["maximize"]})
        else:
            g = prepared_grad(self, p, group)
        bias_correction2 = 1 - beta2 ** step
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * group["momentum_decay"])))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * group["momentum_decay"])))
        # NOTE: mu_product is a float32 scalar, as PyTorch keeps it.
        mu_product_data = state["mu_product"]._data
        mu_product_data *= np.float32(mu)
        mu_product = float(mu_product_data)
        mu_product_next = mu_product * mu_next
        exp_avg, exp_avg_sq = state["exp_avg"]._data, state["exp_avg_sq"]._data
        exp_avg += (g - exp_avg) * (1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        denom = xp.sqrt(exp_avg_sq / bias_correction2) + group["eps"]
        data += (-lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
        data += (-lr * mu_next / (1.0 - mu_product_next)) * exp_avg / denom
