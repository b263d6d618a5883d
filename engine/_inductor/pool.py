"""Max pooling over windows that tile the input, forward and backward, as numba kernels in a training step.

The frontend records ``MaxPool2d`` as ``forward_with_ctx`` / ``backward_with_ctx`` (the op's own
backward on its saved argmax). When both are in one program (a captured training step) and the
windows tile the input (kernel == stride, no padding or dilation), the forward is one pass writing
the maximum and its window offset into a buffer of the program, and the backward one pass writing
the gradient to the chosen offset, with the eager op's rules: NaN propagates and marks the last NaN,
otherwise the first offset equal to the maximum is chosen, and the gradient is ``g * (offset == k)``.
"""

from __future__ import annotations

import numpy as np

from engine._inductor.ir import Unsupported, Value

FORWARD_SOURCE = """import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def pool_forward(x, arg, kh, kw, best):
    n, c, ho, wo = best.shape
    for a in range(n):
        for b in range(c):
            for i in range(ho):
                for j in range(wo):
                    m = x[a, b, i * kh, j * kw]
                    for di in range(kh):
                        for dj in range(kw):
                            v = x[a, b, i * kh + di, j * kw + dj]
                            if v > m or v != v:
                                m = v
                    k = -1
                    for di in range(kh):
                        for dj in range(kw):
                            v = x[a, b, i * kh + di, j * kw + dj]
                            if m != m:
                                if v != v:
                                    k = di * kw + dj
                            elif k < 0 and v == m:
                                k = di * kw + dj
                    best[a, b, i, j] = m
                    arg[a, b, i, j] = k
"""

BACKWARD_SOURCE = """import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def pool_backward(g, arg, kh, kw, gx):
    n, c, ho, wo = g.shape
    zero = g.dtype.type(0)
    one = g.dtype.type(1)
    for a in range(n):
        for b in range(c):
            for i in range(ho):
                for j in range(wo):
                    gv = g[a, b, i, j]
                    k = arg[a, b, i, j]
                    for di in range(kh):
                        for dj in range(kw):
                            gx[a, b, i * kh + di, j * kw + dj] = gv * (one if k == di * kw + dj else zero)
"""


class PoolContext:
    """What the lowered forward hands the lowered backward: the argmax buffer and the geometry."""

    def __init__(self, shape: tuple, out_shape: tuple, kernel: tuple, dtype):
        self.shape, self.out_shape, self.kernel, self.dtype = shape, out_shape, kernel, dtype
        self.arg = np.zeros(out_shape, np.int32)
        self.__name__ = "max_pool2d_tiles"

    def forward(self, x, out):
        _kernels()[0](np.ascontiguousarray(x), self.arg, self.kernel[0], self.kernel[1], out)

    def backward(self, g, out):
        _kernels()[1](np.ascontiguousarray(g), self.arg, self.kernel[0], self.kernel[1], out)


_LOADED: list = []


def _kernels() -> list:
    if not _LOADED:
        from engine._inductor.cache import load_kernel

        _LOADED.extend([load_kernel(FORWARD_SOURCE, "pool_forward"), load_kernel(BACKWARD_SOURCE, "pool_backward")])
    return _LOADED


def _only_backward_reads_ctx(node) -> bool:
    """The forward's ctx goes only to ``backward_with_ctx`` nodes of the same graph (never out of it)."""
    import operator

    from engine._dynamo.graph_ops import backward_with_ctx

    for user in node.users:
        if user.target is not operator.getitem:
            return False
        if user.args[1] == 1 and not all(u.target is backward_with_ctx for u in user.users):
            return False
    return True


def lower_forward_with_ctx(L, node, cls, needs_input_grad, *args):
    from engine._inductor import has_numba
    from engine.ops.pooling import MaxPool2d

    if cls is not MaxPool2d or len(args) != 6 or not has_numba():
        return NotImplemented
    x, kernel, stride, padding, dilation, _ceil_mode = args
    if not isinstance(x, Value) or not x.is_array or len(x.shape) != 4 or x.dtype not in _FLOATS:
        return NotImplemented
    kernel, stride = tuple(kernel), tuple(stride)
    n, c, h, w = x.shape
    if kernel != stride or tuple(dilation) != (1, 1) or any(padding) or h % kernel[0] or w % kernel[1] \
            or not _only_backward_reads_ctx(node) or getattr(cls, "_saves_output", False):
        return NotImplemented
    out_shape = (n, c, h // kernel[0], w // kernel[1])
    ctx = PoolContext(x.shape, out_shape, kernel, x.dtype)
    try:
        best = L.extern(ctx.forward, (x,), out_shape, x.dtype, impure=True)
    except Unsupported:
        return NotImplemented
    return (best, ctx)


def lower_backward_with_ctx(L, node, cls, ctx, g):
    if not isinstance(ctx, PoolContext):
        return NotImplemented
    if not isinstance(g, Value) or not g.is_array or g.shape != ctx.out_shape:
        # NOTE: never the eager backward on a lowered forward's context (it is not the op's ctx)
        raise RuntimeError(f"engine._inductor: max_pool2d backward got a gradient it cannot take ({g!r})")
    g = L.cast(g, ctx.dtype)
    gx = L.extern(ctx.backward, (g,), ctx.shape, ctx.dtype, impure=True)
    return (gx, None, None, None, None, None)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
