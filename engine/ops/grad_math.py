"""Math for backward formulas that works on arrays and on tensors alike.

Without ``create_graph`` the autograd engine runs the backward of most built-in ops on raw
NumPy/CuPy arrays (no graph is needed, so no tensor wrappers); with ``create_graph`` the same
formula runs on tensors and is itself recorded. Formulas therefore use Python operators, the
methods arrays and tensors share (``reshape``, ``squeeze``), and the helpers below.
"""

from __future__ import annotations

import numpy as np

from engine import backend
from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.tensor import Tensor


def _xp(array):
    return np if isinstance(array, np.ndarray) else backend.array_module_of(array)


def is_scalar(value) -> bool:
    """True for Python/NumPy numbers (operands that never carry a gradient)."""
    return isinstance(value, int | float | complex | np.generic)


def shape(value) -> tuple:
    return tuple(value._data.shape) if isinstance(value, Tensor) else np.shape(value)


def sum_to(g, target: tuple):
    """Sum a broadcast gradient down to ``target`` (the inverse of broadcasting)."""
    g_shape = g._data.shape if isinstance(g, Tensor) else g.shape
    if g_shape == target:
        return g
    lead = len(g_shape) - len(target)
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(target) if s == 1 and g_shape[lead + i] != 1)
    if isinstance(g, Tensor):
        from engine.ops.reduction import Sum

        g = Sum.apply(g, dims, True) if dims else g
        return g.reshape(target) if g._data.shape != target else g
    return g.sum(axis=dims, keepdims=True).reshape(target) if dims else g.reshape(target)


def expand_reduced(g, input_shape: tuple, dims, keepdim: bool):
    """Broadcast a reduction's gradient back to the input shape."""
    if not keepdim and dims:
        g = g.reshape(tuple(1 if i in dims else s for i, s in enumerate(input_shape)))
    if isinstance(g, Tensor):
        return g.expand(input_shape)
    return _xp(g).broadcast_to(g, input_shape)


def sum_keepdim(x, dims):
    if isinstance(x, Tensor):
        return x.sum(dims, keepdim=True)
    return x.sum(axis=dims, keepdims=True)


def mean_keepdim(x, dims):
    if isinstance(x, Tensor):
        return x.mean(dims, keepdim=True)
    return x.mean(axis=dims, keepdims=True)


def where(condition, a, b):
    if isinstance(condition, Tensor) or isinstance(a, Tensor) or isinstance(b, Tensor):
        from engine.ops.arithmetic import where as tensor_where

        return tensor_where(condition, a, b)
    out = _xp(condition).where(condition, a, b)
    dtype = a.dtype if hasattr(a, "dtype") else b.dtype
    return out.astype(dtype, copy=False)


def _unary(name: str):
    def fn(x):
        if isinstance(x, Tensor):
            from engine.ops import unary

            return getattr(unary, name)(x)
        return getattr(_xp(x), name)(x)

    fn.__name__ = name
    return fn


exp = _unary("exp")
log = _unary("log")
sin = _unary("sin")
cos = _unary("cos")
sign = _unary("sign")


def swap_last(x):
    """Transpose the last two dims (``x.mT``)."""
    return x.mT if isinstance(x, Tensor) else _xp(x).swapaxes(x, -1, -2)


def permute(x, dims: tuple):
    return x.permute(dims) if isinstance(x, Tensor) else x.transpose(dims)


def narrow(x, dim: int, start: int, length: int):
    if isinstance(x, Tensor):
        return x.narrow(dim, start, length)
    return x[(slice(None),) * dim + (slice(start, start + length),)]


def embed(g, target: tuple, index: tuple):
    """Zeros of ``target`` with ``g`` written at a basic ``index`` (the gradient of slicing)."""
    if isinstance(g, Tensor):
        from engine.ops.indexing import embed_slice

        return embed_slice(g, target, index)
    out = _xp(g).zeros(target, g.dtype)
    out[index] = g
    return out


def zeros_like(g):
    if isinstance(g, Tensor):
        from engine.creation import zeros_like as tensor_zeros_like

        return tensor_zeros_like(g)
    return _xp(g).zeros_like(g)


def dtype_kind(x) -> str:
    """NumPy's dtype kind ("f", "c" ...) of an array, tensor or Python number."""
    if isinstance(x, Tensor):
        return x._dtype.np.kind
    return np.asarray(x).dtype.kind if not hasattr(x, "dtype") else x.dtype.kind


def conj(x):
    """The complex conjugate; real values are returned as is (backward formulas multiply by conj(f'))."""
    if isinstance(x, Tensor):
        if not x._dtype.is_complex:
            return x
        from engine.ops.complex import conj_physical

        return conj_physical(x)
    if isinstance(x, complex):
        return x.conjugate()
    if getattr(x, "dtype", None) is not None and x.dtype.kind == "c":
        return x.conj()
    return x


def sgn(x):
    """``x / |x|`` (0 at 0) for complex values, ``sign(x)`` for real ones (the gradient of abs)."""
    if dtype_kind(x) != "c":
        return sign(x)
    if isinstance(x, Tensor):
        from engine.ops.complex import sgn as tensor_sgn

        return tensor_sgn(x)
    magnitude = _xp(x).abs(x)
    return x / _xp(x).where(magnitude == 0, 1, magnitude).astype(magnitude.dtype)


class KeepInput(Op):
    """``grad`` unchanged (a view), with ``source`` as a second input whose gradient is zero."""

    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, grad, source):
        ctx.source_shape = source._data.shape
        return grad._data.view()

    @staticmethod
    def backward(ctx, gg):
        if isinstance(gg, Tensor):
            from engine.creation import zeros

            return gg, zeros(ctx.source_shape, dtype=gg._dtype, device=gg._device)
        return gg, _xp(gg).zeros(ctx.source_shape, gg.dtype)


def keep_input(grad, source):
    """``grad``, with ``source`` joined to its graph as an input of zero gradient (under create_graph only).

    PyTorch's backward kernels of piecewise-linear ops (``threshold_backward`` for relu, ``leaky_relu_backward``)
    take the forward input and give it a zero derivative, so a gradient penalty gives everything upstream of
    that input (a conv's bias, say) a zero gradient, not None.
    """
    if isinstance(grad, Tensor) and state.enabled and isinstance(source, Tensor) and source._requires_grad:
        return KeepInput.apply(grad, source)
    return grad
