"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, bump_step, prepared_grad, step_tensor
from engine.tensor import _make


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as ``torch.optim.Adagrad``.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. lr_decay: learning-rate decay per step. weight_decay: L2 penalty.
        initial_accumulator_value: starting value of the squared-gradient sums. eps: added to the denominator.

    Example:
        >>> opt = engine.optim.Adagrad(model.parameters(), lr=1e-2)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if lr_decay < 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if initial_accumulator_value < 0.0:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        # NOTE: as in PyTorch, Adagrad's state exists from construction (so it can be shared).
        for group in self.param_groups:
            for p in group["params"]:
                xp = p._device.xp
                state = self.state[p]
                state["step"] = step_tensor()
                state["sum"] = _make(xp.full_like(p._data, group["initial_accumulator_value"]), p._dtype,
                                     p._device)

    def share_memory(self) -> None:
        """Accepted for PyTorch compatibility (NumPy state is shared by fork already)."""

    def _update(self, p, group: dict) -> None:
        state = self.state[p]
        xp = p._device.xp
        step = bump_step(state)
        g = prepared_grad(self, p, group)
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        total = state["sum"]._data
        tmp = self._scratch_like(p._data)
        xp.multiply(g, g, out=tmp)
        total += tmp
        xp.sqrt(total, out=tmp)
        tmp += group["eps"]
        xp.divide(g, tmp, out=tmp)
        tmp *= -clr
        p._data += tmp
