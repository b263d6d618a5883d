"""Affine maps: ``linear`` (one GEMM plus an in-place bias add) and ``bilinear``."""

from __future__ import annotations

from engine.amp import autocast_state
from engine.autograd.function import Op
from engine.dtypes import bfloat16, float16, float32
from engine.tensor import Tensor


class Linear(Op):
    """y = x @ w.T + b for x of shape (..., in_features)."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        xd, wd = x._data, w._data
        half = x._dtype is float16 or x._dtype is bfloat16
        if half:  # NOTE: NumPy has no half-precision BLAS: accumulate in float32
            xd, wd = xd.astype(float32.np), wd.astype(float32.np)
        lead = xd.shape[:-1]
        if xd.ndim != 2:
            xd = xd.reshape(-1, xd.shape[-1])
        out = xd @ wd.T
        if b is not None:
            out += b._data
        if half:
            out = out.astype(x._dtype.np)
        return out if len(lead) == 1 else out.reshape(*lead, wd.shape[0])

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        out_features, in_features = w._data.shape
        g2 = g if g._data.ndim == 2 else g.reshape(-1, out_features)
        grad_x = g.matmul(w) if need_x else None
        grad_w = None
        if need_w:
            x2 = x if x._data.ndim == 2 else x.reshape(-1, in_features)
            grad_w = g2.mT.matmul(x2)
        grad_b = g2.sum(0) if need_b else None
        return grad_x, grad_w, grad_b


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Apply y = x Aᵀ + b (``torch.nn.functional.linear``)."""
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        input, weight, bias = autocast_state.cast_inputs("linear", input, weight, bias)
    if input._data.shape[-1] != weight._data.shape[-1]:
        shape = "x".join(str(s) for s in (input._data.shape if input._data.ndim == 2
                                           else (-1, input._data.shape[-1])))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({shape} and "
                           f"{weight._data.shape[1]}x{weight._data.shape[0]})")
    if input._dtype is not weight._dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {input._dtype.name} and "
                           f"{weight._dtype.name}")
    if input._data.ndim == 1:
        return Linear.apply(input.unsqueeze(0), weight, bias).squeeze(0)
    return Linear.apply(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x1ᵀ A x2 + b, with weight A of shape (out, in1, in2)."""
    from engine.ops.linalg import einsum

    out = einsum("...i,oij,...j->...o", input1, weight, input2)
    return out if bias is None else out + bias
