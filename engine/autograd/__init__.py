"""Reverse-mode automatic differentiation: ``backward``, ``grad``, ``Function``, ``gradcheck``, anomaly mode."""

from engine.autograd import anomaly_mode, function, functional, variable
from engine.autograd.anomaly_mode import detect_anomaly, set_detect_anomaly
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
from engine.autograd.variable import Variable

__all__ = [
    "Function",
    "GradcheckError",
    "Variable",
    "anomaly_mode",
    "backward",
    "detect_anomaly",
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
    "set_detect_anomaly",
    "set_grad_enabled",
    "variable",
]


def __getattr__(name):
    # NOTE: ``autograd.profiler`` needs engine.profiler, which needs the op registry built after autograd.
    if name == "profiler":
        import importlib

        return importlib.import_module("engine.autograd.profiler")
    raise AttributeError(f"module 'engine.autograd' has no attribute {name!r}")
