"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay and AMSGrad."""

from __future__ import annotations

import math

from engine.ops import cuda_kernels
from engine.optim.optimizer import (
    Optimizer,
    bump_step,
    check_hyperparameters,
    prepared_grad,
    step_tensor,
    zeros_state,
)


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``; ``decoupled_weight_decay=True`` makes it AdamW.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. betas: decay rates of the first and second moment averages.
        eps: added to the denominator. weight_decay: L2 penalty (decoupled for AdamW).
        amsgrad: use the maximum of past second moments. maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.Adam(model.parameters(), lr=1e-3)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False, fused=None,
                 decoupled_weight_decay: bool = False):
        check_hyperparameters(lr=lr, eps=eps, betas=betas, weight_decay=weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        data = p._data
        if not state:
            state["step"] = step_tensor()
            state["exp_avg"] = zeros_state(p)
            state["exp_avg_sq"] = zeros_state(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_state(p)
        step = bump_step(state)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        decay = group["weight_decay"]
        if group["decoupled_weight_decay"] and decay != 0:
            data *= 1 - lr * decay
            g = prepared_grad(self, p, {"maximize": group["maximize"]})
        else:
            g = prepared_grad(self, p, group)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        if not group["amsgrad"] and cuda_kernels.fusable(data) and g.dtype == data.dtype:  # one kernel on the GPU
            cuda_kernels.adam_step(data, g, m, v, beta1=beta1, beta2=beta2, step_size=lr / (1 - beta1 ** step),
                                   bias2_sqrt=math.sqrt(1 - beta2 ** step), eps=eps)
            return
        tmp = self._scratch_like(data)
        # NOTE: m.lerp_(g, 1 - beta1) and v.mul_(beta2).addcmul_(g, g, value=1 - beta2), as PyTorch
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - beta1
        m += tmp
        v *= beta2
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - beta2
        v += tmp
        if group["amsgrad"]:
            v_max = state["max_exp_avg_sq"]._data
            xp.maximum(v_max, v, out=v_max)
            v = v_max
        step_size = lr / (1 - beta1 ** step)
        xp.sqrt(v, out=tmp)
        tmp /= math.sqrt(1 - beta2 ** step)
        tmp += eps
        xp.divide(m, tmp, out=tmp)
        tmp *= -step_size
        data += tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    Example:
        >>> opt = engine.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False, foreach=None,
                 capturable: bool = False, differentiable: bool = False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
