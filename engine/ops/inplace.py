"""In-place ops (``add_``, ``mul_``, ``x[i] = v`` ...) with PyTorch's autograd semantics.

Without graph recording they write straight into the tensor's memory. With recording, the op runs
out of place on an alias of the old value and the result is copied back; the tensor then takes
over the new graph node, and its version counter is bumped so stale saved tensors are detected.
"""

from __future__ import annotations

from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.dtypes import FLOAT
from engine.ops.promotion import as_scalar, check_same_device, shape_of
from engine.tensor import Tensor, _make


def recording(x: Tensor, *others) -> bool:
    if not state.enabled:
        return False
    if x._requires_grad:
        return True
    return any(isinstance(o, Tensor) and o._requires_grad for o in others)


def _check_can_modify(x: Tensor) -> None:
    if x.grad_fn is None and x._requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if x._base is not None:
        raise RuntimeError("in-place operation on a view of another tensor while recording gradients is not "
                           "supported; clone() the view first or use the out-of-place op")


def _check_castable(x: Tensor, result: Tensor) -> None:
    if result._dtype.category > x._dtype.category:
        raise RuntimeError(f"result type {result._dtype.name} can't be cast to the desired output type "
                           f"{x._dtype.name}")
    if result._data.shape != x._data.shape:
        raise RuntimeError(f"output with shape {list(x._data.shape)} doesn't match the broadcast shape "
                           f"{list(result._data.shape)}")


def apply_inplace(x: Tensor, compute, *args) -> Tensor:
    """Make ``x`` hold ``compute(x, *args)``, keeping its identity and memory.

    The graph is recorded when grad mode is on and ``x`` or one of ``args`` requires grad.
    """
    if not recording(x, *args):
        result = compute(x, *args)
        _check_castable(x, result)
        x._data[...] = result._data
        x._vc[0] += 1
        return x
    _check_can_modify(x)
    old = _make(x._data, x._dtype, x._device)
    old._vc, old.grad_fn, old._requires_grad, old._output_nr = x._vc, x.grad_fn, x._requires_grad, x._output_nr
    result = compute(old, *args)
    _check_castable(x, result)
    node = result.grad_fn
    if node is not None and any(s is old for s in node._saved or ()):
        # NOTE: the op saved the old value, which is about to be overwritten: keep a private copy.
        old._data = old._data.copy()
        old._vc = [old._vc[0]]
        node._versions = tuple(old._vc[0] if s is old else v for s, v in zip(node._saved, node._versions,
                                                                               strict=True))
    x._data[...] = result._data if result._dtype is x._dtype else result._data.astype(x._dtype.np)
    x._vc[0] += 1
    if node is not None:
        x.grad_fn = node
        x._output_nr = result._output_nr
        x._requires_grad = True
    return x


def _ufunc_inplace(x: Tensor, other, name: str, out_of_place) -> Tensor:
    """Fast path for arithmetic updates (optimizers): one ufunc writing into x's memory."""
    if recording(x, other):
        return apply_inplace(x, out_of_place, other)
    if isinstance(other, Tensor):
        if other._device is not x._device:
            check_same_device(x, other)
        if other._dtype.category > x._dtype.category:
            raise RuntimeError(f"result type {other._dtype.name} can't be cast to the desired output type "
                               f"{x._dtype.name}")
        operand = other._data
    else:
        operand = as_scalar(other)
        if operand is None:
            return apply_inplace(x, out_of_place, other)
        if isinstance(operand, float) and x._dtype.category != FLOAT:
            raise RuntimeError(f"result type Float can't be cast to the desired output type {x._dtype.name}")
    from engine.backend import quiet_fp

    with quiet_fp():
        getattr(x._device.xp, name)(x._data, operand, out=x._data, casting="unsafe")
    x._vc[0] += 1
    return x


def add_(x: Tensor, other, *, alpha=1) -> Tensor:
    from engine.ops.arithmetic import add_op

    if alpha != 1:
        other = other * alpha
    return _ufunc_inplace(x, other, "add", add_op)


def sub_(x: Tensor, other, *, alpha=1) -> Tensor:
    from engine.ops.arithmetic import sub_op

    if alpha != 1:
        other = other * alpha
    return _ufunc_inplace(x, other, "subtract", sub_op)


def mul_(x: Tensor, other) -> Tensor:
    from engine.ops.arithmetic import mul_op

    return _ufunc_inplace(x, other, "multiply", mul_op)


def div_(x: Tensor, other, *, rounding_mode=None) -> Tensor:
    from engine.ops.arithmetic import div

    if rounding_mode is not None or x._dtype.category != FLOAT:
        return apply_inplace(x, lambda old, o: div(old, o, rounding_mode=rounding_mode), other)
    return _ufunc_inplace(x, other, "true_divide", div)


def make_inplace(fn):
    """The in-place form of an out-of-place op: ``x.exp_()`` from ``exp``."""

    def inplace(x, *args, **kwargs):
        # the arguments ride along so that apply_inplace sees whether any of them requires grad
        return apply_inplace(x, lambda old, *_: fn(old, *args, **kwargs), *args, *kwargs.values())

    inplace.__name__ = fn.__name__ + "_"
    inplace.__doc__ = f"In-place version of ``{fn.__name__}``."
    return inplace


def copy_(x: Tensor, src, non_blocking: bool = False) -> Tensor:
    """Copy ``src`` (broadcast, cast, moved across devices) into ``x``."""
    if not isinstance(src, Tensor):
        from engine.creation import as_tensor

        src = as_tensor(src)
    if not recording(x, src):
        from engine import backend

        data = backend.to_device_array(src._data, x._device)
        x._data[...] = data
        x._vc[0] += 1
        return x
    return apply_inplace(x, lambda old, s: Overwrite.apply(old, s.to(x._dtype, x._device)), src)


class Overwrite(Op):
    """``src`` broadcast to ``old``'s shape; ``old`` gets a zero gradient."""

    @staticmethod
    def forward(ctx, old, src):
        ctx.src_shape = shape_of(src)
        xp = old._device.xp
        if isinstance(src, Tensor):
            return xp.broadcast_to(src._data, old._data.shape).astype(old._dtype.np, copy=True)
        return xp.full(old._data.shape, src, dtype=old._dtype.np)

    @staticmethod
    def backward(ctx, g):
        from engine.creation import zeros_like
        from engine.ops.reduction import sum_to

        need_old, need_src = ctx.needs_input_grad
        return (zeros_like(g) if need_old else None), (sum_to(g, ctx.src_shape) if need_src else None)


def fill_(x: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        if recording(x, value):
            return copy_(x, value)
        value = value.item()
    if recording(x):
        return apply_inplace(x, lambda old: Overwrite.apply(old, value))
    x._data[...] = value
    x._vc[0] += 1
    return x


def zero_(x: Tensor) -> Tensor:
    return fill_(x, 0)
