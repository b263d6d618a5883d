"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay and AMSGrad.

``capturable=True`` keeps ``state["step"]`` on the parameter's device (a 0-d float32 tensor) and computes the
bias corrections there, so a step reads nothing from the host and can be recorded into a CUDA graph; as in
PyTorch, a step with capturable parameters off the GPU raises.
"""

from __future__ import annotations

import math

import numpy as np

from engine.dtypes import float32
from engine.ops import cuda_kernels
from engine.optim.optimizer import (
    Optimizer,
    bump_step,
    check_hyperparameters,
    prepared_grad,
    step_tensor,
    zeros_state,
)
from engine.tensor import _make

# NOTE: PyTorch's list (torch.utils._foreach_utils._get_capturable_supported_devices, single-tensor path)
CAPTURABLE_DEVICES = ("cuda", "xpu", "hpu", "privateuseone", "xla")


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``; ``decoupled_weight_decay=True`` makes it AdamW.

    Args:
        params: parameters or parameter groups to optimize.
        lr: learning rate. betas: decay rates of the first and second moment averages.
        eps: added to the denominator. weight_decay: L2 penalty (decoupled for AdamW).
        amsgrad: use the maximum of past second moments. maximize: ascend the objective.
        capturable: keep the step count on the device and compute the bias corrections there (CUDA graph
            capture; see the module docstring).

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
            state["step"] = device_step(p) if group["capturable"] else step_tensor()
            state["exp_avg"] = zeros_state(p)
            state["exp_avg_sq"] = zeros_state(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_state(p)
        if group["capturable"]:
            self._update_capturable(p, group, state)
            return
        step = bump_step(state)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        g = self._decayed_grad(p, group)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        if not group["amsgrad"] and cuda_kernels.fusable(data) and g.dtype == data.dtype:  # one kernel on the GPU
            cuda_kernels.adam_step(data, g, m, v, beta1=beta1, beta2=beta2, step_size=lr / (1 - beta1 ** step),
                                   bias2_sqrt=math.sqrt(1 - beta2 ** step), eps=eps)
            return
        tmp = self._scratch_like(data)
        v = _update_moments(xp, g, m, v, tmp, group, state)
        step_size = lr / (1 - beta1 ** step)
        xp.sqrt(v, out=tmp)
        tmp /= math.sqrt(1 - beta2 ** step)
        tmp += eps
        xp.divide(m, tmp, out=tmp)
        tmp *= -step_size
        data += tmp

    def _update_capturable(self, p, group: dict, state: dict) -> None:
        """The update with the step count and bias corrections on the device: no host read, the same arithmetic
        as the host path (bias corrections in float64, then in the parameter's dtype)."""
        step = state["step"]
        if p._device.type not in CAPTURABLE_DEVICES or step._device.type != p._device.type:
            raise AssertionError("If capturable=True, params and state_steps must be on supported devices: "
                                 f"{list(CAPTURABLE_DEVICES)}.")
        xp = p._device.xp
        data = p._data
        counter = step._data
        counter += 1
        n = counter.astype(np.float64)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        g = self._decayed_grad(p, group)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        tmp = self._scratch_like(data)
        v = _update_moments(xp, g, m, v, tmp, group, state)
        # NOTE: 0-d device arrays in the parameter's dtype: what the host path's Python floats become
        neg_step_size = (-lr / (1 - xp.power(beta1, n))).astype(data.dtype)
        bias2_sqrt = xp.sqrt(1 - xp.power(beta2, n)).astype(data.dtype)
        xp.sqrt(v, out=tmp)
        tmp /= bias2_sqrt
        tmp += eps
        xp.divide(m, tmp, out=tmp)
        tmp *= neg_step_size
        data += tmp

    def _decayed_grad(self, p, group: dict):
        """The gradient the moments take: AdamW's decay applied to the weights first, or Adam's L2 in the gradient."""
        if group["decoupled_weight_decay"] and group["weight_decay"] != 0:
            p._data *= 1 - group["lr"] * group["weight_decay"]
            return prepared_grad(self, p, {"maximize": group["maximize"]})
        return prepared_grad(self, p, group)

    def load_state_dict(self, state_dict: dict) -> None:
        """As ``Optimizer.load_state_dict``; in a capturable group the steps move to the parameter's device (float32),
        as PyTorch does."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            if not group.get("capturable"):
                continue
            for p in group["params"]:
                step = self.state.get(p, {}).get("step")
                if step is not None and (step._device != p._device or step._dtype is not float32):
                    self.state[p]["step"] = step.to(device=p._device, dtype=float32)


def device_step(p, value=0.0):
    """A 0-d float32 step count on ``p``'s device (PyTorch's capturable ``state["step"]``)."""
    return _make(p._device.xp.full((), value, dtype=np.float32), float32, p._device)


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


def _update_moments(xp, g, m, v, tmp, group: dict, state: dict):
    """m.lerp_(g, 1 - beta1) and v.mul_(beta2).addcmul_(g, g, value=1 - beta2), as PyTorch, in place; the
    second moment the step divides by (its running maximum with amsgrad)."""
    beta1, beta2 = group["betas"]
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
        return v_max
    return v
