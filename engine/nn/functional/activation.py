"""Activation functions in PyTorch's ``nn.functional`` form (``inplace=`` flags included)."""

from __future__ import annotations

from engine.autograd.grad_mode import is_grad_enabled
from engine.ops import activation as _act
from engine.ops.arithmetic import where
from engine.ops.unary import sigmoid, tanh
from engine.tensor import Tensor


def _source(input: Tensor, inplace: bool) -> Tensor:
    """What an in-place activation computes from: a copy when autograd records, since the op may save its
    input for backward and the in-place write would otherwise invalidate it."""
    if inplace and input.requires_grad and is_grad_enabled():
        return input.clone()
    return input


def _maybe_inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    if not inplace:
        return out
    from engine.ops.inplace import copy_

    return copy_(input, out)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.relu(x), inplace)


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.relu6(x), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.leaky_relu(x, negative_slope), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.elu(x, alpha), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.elu(x, _SELU_ALPHA) * _SELU_SCALE, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.elu(x / alpha, 1.0) * alpha, inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    return _act.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.silu(x), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.mish(x), inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _act.softplus(input, beta, threshold)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, _act.hardtanh(x, min_val, max_val), inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, (x / 6 + 0.5).clamp(0.0, 1.0), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, x * (x + 3).clamp(0.0, 6.0) / 6, inplace)


def logsigmoid(input: Tensor) -> Tensor:
    return -_act.softplus(-input)


def softsign(input: Tensor) -> Tensor:
    return input / (1 + input.abs())


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, input * 0.0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    return where(input.abs() > lambd, input, input * 0.0)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    x = _source(input, inplace)
    return _maybe_inplace(input, where(x > threshold, x, value), inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    w = weight
    if weight._data.size > 1 and input._data.ndim > 1:
        w = weight.reshape((1, -1) + (1,) * (input._data.ndim - 2))
    return where(input > 0, input, input * w)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    if training:
        from engine.creation import rand_like

        slope = rand_like(input) * (upper - lower) + lower
        x = _source(input, inplace)
        return _maybe_inplace(input, where(x >= 0, x, x * slope), inplace)
    return leaky_relu(input, (lower + upper) / 2, inplace)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _act.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _act.log_softmax(input, dim, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _act.softmax(-input, dim, dtype)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    from engine.creation import rand_like, zeros_like

    gumbels = -(-(rand_like(logits).clamp(min=eps)).log()).log()
    soft = _act.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return soft
    index = soft.argmax(dim, keepdim=True)
    hard_one = zeros_like(logits).scatter(dim, index, 1.0)
    return hard_one - soft.detach() + soft


__all__ = [
    "celu", "celu_", "elu", "elu_", "gelu", "glu", "gumbel_softmax", "hardshrink", "hardsigmoid", "hardswish",
    "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "log_softmax", "logsigmoid", "mish", "prelu", "relu",
    "relu6", "relu_", "rrelu", "rrelu_", "selu", "selu_", "sigmoid", "silu", "softmax", "softmin", "softplus",
    "softshrink", "softsign", "tanh", "tanhshrink", "threshold", "threshold_",
]



def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _threshold(input, threshold, value, inplace=True)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, inplace=True)


_threshold = threshold
