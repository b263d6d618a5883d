"""Muon: momentum SGD whose 2-D updates are orthogonalised by a Newton-Schulz iteration."""

from __future__ import annotations

import math

import numpy as np

from engine.optim.optimizer import Optimizer, run_closure
from engine.tensor import _make

EPS = 1e-7
DEFAULT_A, DEFAULT_B, DEFAULT_C = 3.4445, -4.7750, 2.0315
DEFAULT_NS_STEPS = 5


def _bf16(x):
    """Round float32 values to bfloat16 (nearest-even) and keep them as float32: the iteration runs
    in bfloat16, as PyTorch's does. Bit arithmetic, so CuPy arrays (no bfloat16 dtype) work too."""
    bits = x.astype(np.float32).view(np.uint32)
    bits = (bits + (((bits >> 16) & 1) + 0x7FFF)) & 0xFFFF0000
    return bits.view(np.float32)


def _zeropower_via_newtonschulz(xp, grad, ns_coefficients, ns_steps: int, eps: float):
    """The quintic Newton-Schulz iteration towards U V^T of ``grad`` (bfloat16 values, float32 sums)."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    x = _bf16(grad.astype(np.float32))
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    norm = _bf16(xp.sqrt(xp.sum(x * x)).reshape(1))
    x = _bf16(x / xp.maximum(norm, _bf16(xp.full(1, eps, dtype=np.float32))))
    for _ in range(ns_steps):
        gram = _bf16(x @ x.T)
        update = _bf16(b * gram + c * (gram @ gram))
        x = _bf16(a * x + update @ x)
    return x.T if tall else x


def _adjust_lr(lr: float, adjust_lr_fn, shape) -> float:
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


class Muon(Optimizer):
    """Muon (Jordan et al.), as ``torch.optim.Muon``: for 2-D hidden-layer weights only (biases,
    embeddings and heads go to e.g. AdamW).

    Args:
        params: 2-D parameters. lr: learning rate. weight_decay: decoupled weight decay.
        momentum: momentum factor. nesterov: Nesterov momentum. ns_coefficients: (a, b, c) of the
        Newton-Schulz polynomial. eps: guards the normalisation. ns_steps: iterations.
        adjust_lr_fn: None/"original" (``sqrt(max(1, A/B))``) or "match_rms_adamw" (``0.2 sqrt(max(A, B))``).

    Example:
        >>> opt = engine.optim.Muon([p for p in model.parameters() if p.ndim == 2], lr=0.02)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients: tuple = (DEFAULT_A, DEFAULT_B, DEFAULT_C), eps: float = EPS,
                 ns_steps: int = DEFAULT_NS_STEPS, adjust_lr_fn: str | None = None):
        if lr < 0.0:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if momentum < 0.0:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                    "ns_coefficients": ns_coefficients, "eps": eps, "ns_steps": ns_steps,
                    "adjust_lr_fn": adjust_lr_fn}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{p.size()}")

    def step(self, closure=None):
        """Update every parameter that has a gradient once; ``closure`` re-evaluates the loss."""
        loss = run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p, group)
                p._vc[0] += 1
        return loss

    def _update(self, p, group: dict) -> None:
        xp = p._device.xp
        g = p.grad._data
        if g.ndim != 2:
            raise ValueError("Param gradient must be a 2D matrix")
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = _make(xp.zeros_like(g), p._dtype, p._device)
        buf = state["momentum_buffer"]._data
        momentum = group["momentum"]
        buf += (g - buf) * (1 - momentum)
        update = g + (buf - g) * momentum if group["nesterov"] else buf
        update = _zeropower_via_newtonschulz(xp, update, group["ns_coefficients"], group["ns_steps"], group["eps"])
        lr = group["lr"]
        p._data *= 1 - lr * group["weight_decay"]
        p._data -= _adjust_lr(lr, group["adjust_lr_fn"], p._data.shape) * update.astype(p._data.dtype)
