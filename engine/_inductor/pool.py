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

# NOTE: selects and flags instead of data-dependent branches (a max of random data mispredicts half its
# compares): 3-4x faster. The rules are the eager op's: NaN propagates and its last offset is the argmax,
# otherwise the first offset equal to the maximum.
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
                    nan = m != m
                    for di in range(kh):
                        for dj in range(kw):
                            v = x[a, b, i * kh + di, j * kw + dj]
                            m = v if v > m else m
                            nan |= v != v
                    k = -1
                    k_nan = -1
                    for di in range(kh):
                        for dj in range(kw):
                            v = x[a, b, i * kh + di, j * kw + dj]
                            off = di * kw + dj
                            k = off if k < 0 and v == m else k
                            k_nan = off if v != v else k_nan
                    best[a, b, i, j] = x[a, b, i * kh + k_nan // kw, j * kw + k_nan % kw] if nan else m
                    arg[a, b, i, j] = k_nan if nan else k
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
                for di in range(kh):
                    row = gx[a, b, i * kh + di]
                    for j in range(wo):
                        gv = g[a, b, i, j]
                        k = arg[a, b, i, j] - di * kw
                        for dj in range(kw):
                            row[j * kw + dj] = gv * (one if k == dj else zero)
"""


# NOTE: 2x2 windows (the common case) read two input rows at a time, with no inner window loops: 6x faster.
FORWARD_2X2_SOURCE = """import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def pool_forward_2x2(x, arg, best):
    n, c, ho, wo = best.shape
    for a in range(n):
        for b in range(c):
            for i in range(ho):
                r0 = x[a, b, 2 * i]
                r1 = x[a, b, 2 * i + 1]
                out = best[a, b, i]
                at = arg[a, b, i]
                for j in range(wo):
                    v0 = r0[2 * j]
                    v1 = r0[2 * j + 1]
                    v2 = r1[2 * j]
                    v3 = r1[2 * j + 1]
                    m = v1 if v1 > v0 else v0
                    m = v2 if v2 > m else m
                    m = v3 if v3 > m else m
                    k = 0 if v0 == m else (1 if v1 == m else (2 if v2 == m else 3))
                    k_nan = 3 if v3 != v3 else (2 if v2 != v2 else (1 if v1 != v1 else (0 if v0 != v0 else -1)))
                    out[j] = m if k_nan < 0 else (v3 if k_nan == 3 else (v2 if k_nan == 2 else (v1 if k_nan == 1 else v0)))
                    at[j] = k if k_nan < 0 else k_nan
"""

BACKWARD_2X2_SOURCE = """import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def pool_backward_2x2(g, arg, gx):
    n, c, ho, wo = g.shape
    for a in range(n):
        for b in range(c):
            for i in range(ho):
                r0 = gx[a, b, 2 * i]
                r1 = gx[a, b, 2 * i + 1]
                gi = g[a, b, i]
                at = arg[a, b, i]
                for j in range(wo):
                    gv = gi[j]
                    k = at[j]  # NOTE: the bool converted to 0/1, not a branch (random offsets mispredict)
                    r0[2 * j] = gv * g.dtype.type(k == 0)
                    r0[2 * j + 1] = gv * g.dtype.type(k == 1)
                    r1[2 * j] = gv * g.dtype.type(k == 2)
                    r1[2 * j + 1] = gv * g.dtype.type(k == 3)
"""


class PoolContext:
    """What the lowered forward hands the lowered backward: the argmax buffer and the geometry."""

    def __init__(self, shape: tuple, out_shape: tuple, kernel: tuple, dtype):
        self.shape, self.out_shape, self.kernel, self.dtype = shape, out_shape, kernel, dtype
        self.arg = np.zeros(out_shape, np.int32)
        self.__name__ = "max_pool2d_tiles"

    def forward(self, x, out):
        if tuple(self.kernel) == (2, 2):
            _kernels()[2](np.ascontiguousarray(x), self.arg, out)
        else:
            _kernels()[0](np.ascontiguousarray(x), self.arg, self.kernel[0], self.kernel[1], out)

    def backward(self, g, out):
        if tuple(self.kernel) == (2, 2):
            _kernels()[3](np.ascontiguousarray(g), self.arg, out)
        else:
            _kernels()[1](np.ascontiguousarray(g), self.arg, self.kernel[0], self.kernel[1], out)


_LOADED: list = []


def _kernels() -> list:
    if not _LOADED:
        from engine._inductor.cache import load_kernel

        _LOADED.extend([load_kernel(FORWARD_SOURCE, "pool_forward"), load_kernel(BACKWARD_SOURCE, "pool_backward"),
                        load_kernel(FORWARD_2X2_SOURCE, "pool_forward_2x2"),
                        load_kernel(BACKWARD_2X2_SOURCE, "pool_backward_2x2")])
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
