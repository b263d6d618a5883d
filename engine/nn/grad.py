"""Gradients of the convolutions with respect to their input or weight, as ``torch.nn.grad``.

Each is the vector-Jacobian product of the convolution, computed by autograd (a convolution is linear in each
argument, so the point it is taken at does not matter); with ``grad_output`` or the other argument requiring
grad, the result is itself differentiable.

Example:
    >>> w = engine.randn(4, 3, 3, 3); g = engine.randn(1, 4, 6, 6)
    >>> nn.grad.conv2d_input((1, 3, 8, 8), w, g).shape
    engine.Size([1, 3, 8, 8])
"""

from __future__ import annotations

from engine.autograd import grad as _autograd_grad
from engine.autograd.grad_mode import enable_grad
from engine.creation import zeros
from engine.nn.functional import conv1d, conv2d, conv3d

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input", "conv3d_weight"]


def _vjp(conv, input, weight, grad_output, wrt: str, stride, padding, dilation, groups):
    create_graph = grad_output.requires_grad or (weight if wrt == "input" else input).requires_grad
    with enable_grad():
        out = conv(input, weight, None, stride, padding, dilation, groups)
        target = input if wrt == "input" else weight
        if tuple(out.shape) != tuple(grad_output.shape):
            raise RuntimeError(f"grad_output has shape {list(grad_output.shape)}, but the convolution gives "
                               f"{list(out.shape)}")
        (result,) = _autograd_grad(out, target, grad_output, create_graph=create_graph)
    return result


def _input_grad(conv, input_size, weight, grad_output, stride, padding, dilation, groups):
    input = zeros(tuple(input_size), dtype=grad_output.dtype, device=grad_output.device, requires_grad=True)
    return _vjp(conv, input, weight, grad_output, "input", stride, padding, dilation, groups)


def _weight_grad(conv, input, weight_size, grad_output, stride, padding, dilation, groups):
    weight = zeros(tuple(weight_size), dtype=grad_output.dtype, device=grad_output.device, requires_grad=True)
    return _vjp(conv, input, weight, grad_output, "weight", stride, padding, dilation, groups)


def conv1d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv1d`` with respect to its input of shape ``input_size``."""
    return _input_grad(conv1d, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv1d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv1d`` with respect to its weight of shape ``weight_size``."""
    return _weight_grad(conv1d, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv2d`` with respect to its input of shape ``input_size``."""
    return _input_grad(conv2d, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv2d`` with respect to its weight of shape ``weight_size``."""
    return _weight_grad(conv2d, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv3d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv3d`` with respect to its input of shape ``input_size``."""
    return _input_grad(conv3d, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv3d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv3d`` with respect to its weight of shape ``weight_size``."""
    return _weight_grad(conv3d, input, weight_size, grad_output, stride, padding, dilation, groups)
