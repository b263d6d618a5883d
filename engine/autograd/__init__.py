"""Reverse-mode automatic differentiation: ``backward``, ``grad``, ``Function``, ``gradcheck``."""

from engine.autograd import function, functional
from engine.autograd.function import Function, once_differentiable
from engine.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from engine.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from engine.autograd.graph import backward, grad

__all__ = [
    "Function",
    "GradcheckError",
    "backward",
    "enable_grad",
    "function",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "inference_mode",
    "is_grad_enabled",
    "no_grad",
    "once_differentiable",
    "set_grad_enabled",
]
