"""RMSprop: divide the gradient by a running root-mean-square, optionally centered and with momentum."""

from __future__ import annotations

from engine.optim.optimizer import (
    Optimizer,
    bump_step,
    check_hyperparameters,
    prepared_grad,
    step_tensor,
    zeros_state,
)


class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. alpha: smoothing constant of the squared-gradient average.
        eps: added to the denominator. weight_decay: L2 penalty. momentum: momentum factor.
        centered: normalise by the estimated variance instead of the raw second moment.

    Example:
        >>> opt = engine.optim.RMSprop(model.parameters(), lr=1e-2)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False, differentiable: bool = False):
        check_hyperparameters(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        data = p._data
        if not state:
            state["step"] = step_tensor()
            state["square_avg"] = zeros_state(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_state(p)
            if group["centered"]:
                state["grad_avg"] = zeros_state(p)
        bump_step(state)
        g = prepared_grad(self, p, group)
        alpha, lr = group["alpha"], group["lr"]
        square_avg = state["square_avg"]._data
        tmp = self._scratch_like(data)
        square_avg *= alpha
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - alpha
        square_avg += tmp
        if group["centered"]:
            grad_avg = state["grad_avg"]._data
            xp.subtract(g, grad_avg, out=tmp)
            tmp *= 1 - alpha
            grad_avg += tmp
            xp.multiply(grad_avg, grad_avg, out=tmp)
            xp.subtract(square_avg, tmp, out=tmp)
            xp.sqrt(tmp, out=tmp)
        else:
            xp.sqrt(square_avg, out=tmp)
        tmp += group["eps"]
        xp.divide(g, tmp, out=tmp)
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]._data
            buf *= group["momentum"]
            buf += tmp
            xp.multiply(buf, -lr, out=tmp)
        else:
            tmp *= -lr
        data += tmp
