"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from engine.ops import cuda_kernels
from engine.optim.optimizer import Optimizer, check_hyperparameters, prepared_grad
from engine.tensor import _make


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. momentum: momentum factor. dampening: dampening of the momentum.
        weight_decay: L2 penalty. nesterov: Nesterov momentum. maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False, foreach=None,
                 differentiable: bool = False, fused=None):
        check_hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov, "maximize": maximize, "foreach": foreach,
                    "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)

    def _update(self, p, group: dict) -> None:
        xp = p._device.xp
        g = prepared_grad(self, p, group)
        momentum = group["momentum"]
        tmp = self._scratch_like(p._data)
        if momentum != 0:
            state = self.state[p]
            entry = state.get("momentum_buffer")
            if entry is None:
                entry = state["momentum_buffer"] = _make(g.copy(), p._dtype, p._device)
                buf = entry._data
            elif cuda_kernels.fusable(p._data) and g.dtype == p._data.dtype:  # one kernel on the GPU
                cuda_kernels.sgd_momentum_step(p._data, g, entry._data, lr=group["lr"], momentum=momentum,
                                               dampening=group["dampening"], nesterov=group["nesterov"])
                return
            else:
                buf = entry._data
                buf *= momentum
                dampening = group["dampening"]
                if dampening == 0:
                    buf += g
                else:
                    xp.multiply(g, 1 - dampening, out=tmp)
                    buf += tmp
            if group["nesterov"]:
                xp.multiply(buf, momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        xp.multiply(g, -group["lr"], out=tmp)
        p._data += tmp
