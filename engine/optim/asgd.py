"""ASGD: stochastic gradient descent with Polyak-Ruppert averaging of the iterates (``state["ax"]``)."""

from __future__ import annotations

from engine.optim.optimizer import (
    Optimizer,
    bump_step,
    check_hyperparameters,
    prepared_grad,
    step_tensor,
    zeros_state,
)


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky), as ``torch.optim.ASGD``.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. lambd: decay term. alpha: power of the eta update. t0: the step at
            which averaging starts. weight_decay: L2 penalty. maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.ASGD(model.parameters(), lr=1e-2)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0, foreach=None, maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False):
        check_hyperparameters(lr=lr, weight_decay=weight_decay)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        data = p._data
        if not state:
            state["step"] = step_tensor()
            # NOTE: eta and mu are float32 scalars as in PyTorch, so the update uses their rounded values.
            state["eta"] = step_tensor(group["lr"])
            state["mu"] = step_tensor(1.0)
            state["ax"] = zeros_state(p)
        step = bump_step(state)
        g = prepared_grad(self, p, group)
        eta = float(state["eta"]._data)
        mu = float(state["mu"]._data)
        data *= 1 - group["lambd"] * eta
        data -= eta * g
        ax = state["ax"]._data
        if mu != 1:
            ax += (data - ax) * mu
        else:
            ax[...] = data
        lr, lambd = group["lr"], group["lambd"]
        state["eta"]._data[...] = lr / ((1 + lambd * lr * step) ** group["alpha"])
        state["mu"]._data[...] = 1 / max(1, step - group["t0"])
