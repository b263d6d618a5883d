"""Conv2d forward and backward in a training step: strided im2col, numba col2im and whole-batch GEMMs.

The frontend records ``Conv2d`` as ``forward_with_ctx`` / ``backward_with_ctx``. When both are in one
program, the forward is an im2col writing the columns (C*kh*kw, N*Ho*Wo) into a buffer of the program
(one strided NumPy copy of every kernel window of the input, zero-padded into a buffer the context keeps:
half the time of a numba loop over window rows), one GEMM ``W @ cols`` writing (O, N, Ho, Wo), read
through a transposed view by the bias add (a pointwise value the next activation fuses with, so the
epilogue writes NCHW once). The backward copies the gradient to channel-major (O, N*Ho*Wo) once; the
weight gradient is one GEMM ``g @ cols.T`` in the weight's own layout, the bias gradient a row sum, and
the input gradient one GEMM ``W.T @ g`` folded by a col2im kernel (channel by channel, so a channel's
planes stay in cache) that adds the taps in the eager op's order. Groups run as one batched GEMM over
(G, ., .) views of the same buffers.
"""

from __future__ import annotations

import numpy as np

from engine._inductor import kernels
from engine._inductor.ir import Value
from engine._inductor.pool import _only_backward_reads_ctx

COL2IM_SOURCE = """import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def col2im(cols, sh, sw, ph, pw, dh, dw, kh, kw, ho, wo, gx):
    n, c, h, w = gx.shape
    zero = gx.dtype.type(0)
    for ci in range(c):
        for a in range(n):
            gx[a, ci] = zero
        for i in range(kh):
            for j in range(kw):
                src = cols[(ci * kh + i) * kw + j]
                off = j * dw - pw
                lo = 0 if off >= 0 else (-off + sw - 1) // sw
                hi = 0 if w - off <= 0 else min(wo, (w - off + sw - 1) // sw)
                for a in range(n):
                    for oh in range(ho):
                        r = oh * sh - ph + i * dh
                        if r < 0 or r >= h:
                            continue
                        base = (a * ho + oh) * wo
                        if sw == 1:
                            for ow in range(lo, hi):
                                gx[a, ci, r, ow + off] += src[base + ow]
                        else:
                            for ow in range(lo, hi):
                                gx[a, ci, r, ow * sw + off] += src[base + ow]
"""

_LOADED: list = []


def _kernels() -> list:
    if not _LOADED:
        from engine._inductor.cache import load_kernel

        _LOADED.append(load_kernel(COL2IM_SOURCE, "col2im"))
    return _LOADED


class ConvContext:
    """What the lowered forward hands the lowered backward: the geometry and the values it made."""

    def __init__(self, x: Value, w: Value, bias, stride, pads, dilation, groups: int, out_hw: tuple):
        self.x, self.w, self.bias, self.groups = x, w, bias, groups
        top, _bottom, left, _right = pads
        kh, kw = w.shape[2:]
        self.geometry = (stride[0], stride[1], top, left, dilation[0], dilation[1], kh, kw, *out_hw)
        self.pads = tuple(pads)
        self.padded: np.ndarray | None = None  # the zero-padded input (N, C, Hp, Wp); its borders stay 0
        self.dtype = x.dtype
        self.needs_input_grad: tuple = ()
        self.cols: Value | None = None  # the forward's columns (C*kh*kw, N*Ho*Wo), read by the weight gradient
        self.w2: Value | None = None  # the weight as the GEMM's (O, C*kh*kw) or grouped (G, O/G, C/G*kh*kw) view
        self.__name__ = "conv2d_im2col"

    def im2col(self, x, out):
        """The columns: one strided copy of every kernel window (C, kh, kw, N, Ho, Wo) of the padded input."""
        sh, sw, top, left, dh, dw, kh, kw, ho, wo = self.geometry
        n, c, h, w = x.shape
        src = x
        if any(self.pads):
            if self.padded is None:
                _, bottom, _, right = self.pads
                self.padded = np.zeros((n, c, h + top + bottom, w + left + right), x.dtype)
            self.padded[:, :, top:top + h, left:left + w] = x
            src = self.padded
        s_n, s_c, s_h, s_w = src.strides
        strides = (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw)
        taps = np.lib.stride_tricks.as_strided(src, (c, kh, kw, n, ho, wo), strides, writeable=False)
        if out.flags.c_contiguous:  # a buffer of the program: the copy lands in it through a reshaped view
            np.copyto(out.reshape(c, kh, kw, n, ho, wo), taps)
        else:
            np.copyto(out, np.ascontiguousarray(taps).reshape(out.shape))

    def col2im(self, cols, out):
        _kernels()[0](cols, *self.geometry, out)


def skinny_gemm(a, b, out):
    """``a @ b`` for a small (M, N) output over a long K (a weight gradient summed over every output pixel)
    as GEMMs over K chunks, accumulated: OpenBLAS runs one such GEMM many times slower than the chunks."""
    k = a.shape[1]
    kernels.matmul(a[:, :_CHUNK], b[:_CHUNK], out)
    if k > _CHUNK:
        part = np.empty_like(out)
        for start in range(_CHUNK, k, _CHUNK):
            kernels.matmul(a[:, start:start + _CHUNK], b[start:start + _CHUNK], part)
            out += part


_SKINNY = 4096  # weight gradients with at most this many values (C*kh*kw * O) are accumulated in chunks
_CHUNK = 16384


def channels_first(g, out):
    """(N, O, Ho, Wo) -> (O, N, Ho, Wo)."""
    np.copyto(out, g.transpose(1, 0, 2, 3))


def lower_forward(L, node, cls, needs_input_grad, *args):
    """``forward_with_ctx`` of ``Conv2d`` (float32/float64, any stride, padding, dilation, groups)."""
    from engine._inductor import has_numba
    from engine.ops.conv import Conv2d

    if cls is not Conv2d or len(args) != 7 or not has_numba():
        return NotImplemented
    return _lower_forward(L, node, needs_input_grad, *args)


def lower_backward(L, node, cls, ctx, g):
    if not isinstance(ctx, ConvContext):
        return NotImplemented
    return _lower_backward(L, ctx, g)


def _lower_forward(L, node, needs_input_grad, x, w, b, stride, pads, dilation, groups):
    from engine._inductor.lowering import _reshape_fn, _transpose_fn

    if not _only_backward_reads_ctx(node) or not all(isinstance(v, Value) and v.is_array for v in (x, w)) \
            or len(x.shape) != 4 or len(w.shape) != 4 or x.dtype not in _FLOATS or w.dtype != x.dtype \
            or not (b is None or (isinstance(b, Value) and b.is_array and b.dtype == x.dtype)):
        return NotImplemented
    n, c, h, wi = x.shape
    o, cg, kh, kw = w.shape
    groups = int(groups)
    if cg * groups != c or o % groups:
        return NotImplemented
    ho = (h + pads[0] + pads[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wi + pads[2] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho <= 0 or wo <= 0 or n == 0:
        return NotImplemented
    ctx = ConvContext(x, w, b, stride, pads, dilation, groups, (ho, wo))
    ctx.needs_input_grad = tuple(needs_input_grad)
    k, m = c * kh * kw, n * ho * wo
    cols = L.extern(ctx.im2col, (x,), (k, m), x.dtype)
    ctx.cols = cols
    if groups == 1:
        ctx.w2 = L.view(_reshape_fn, w, (o, k))
        y = L.extern(kernels.matmul, (ctx.w2, cols), (o, m), x.dtype)
    else:
        ctx.w2 = L.view(_reshape_fn, w, (groups, o // groups, k // groups))
        cols3 = L.view(_reshape_fn, cols, (groups, k // groups, m))
        y = L.extern(kernels.matmul, (ctx.w2, cols3), (groups, o // groups, m), x.dtype)
    out = L.view(_transpose_fn, L.view(_reshape_fn, y, (o, n, ho, wo)), (1, 0, 2, 3))
    if b is not None:
        out = L.pw("add", out, L.view(_reshape_fn, b, (o, 1, 1)), dtype=x.dtype)
    return (out, ctx)


def _lower_backward(L, ctx: ConvContext, g):
    from engine._inductor.lowering import _reshape_fn, _transpose_fn

    assert ctx.cols is not None and ctx.w2 is not None
    n, c, _h, _wi = ctx.x.shape
    o, _, kh, kw = ctx.w.shape
    ho, wo = ctx.geometry[-2:]
    if not isinstance(g, Value) or not g.is_array or g.shape != (n, o, ho, wo):
        # NOTE: never the eager backward on a lowered forward's context (it is not the op's ctx)
        raise RuntimeError(f"engine._inductor: conv2d backward got a gradient it cannot take ({g!r})")
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    g = L.cast(g, ctx.dtype)
    gt = L.extern(channels_first, (g,), (o, n, ho, wo), ctx.dtype)
    m, k, groups = n * ho * wo, c * kh * kw, ctx.groups
    gt2 = L.view(_reshape_fn, gt, (o, m))
    grad_x = grad_w = grad_b = None
    if need_b and ctx.bias is not None:
        grad_b = L.reduce("sum", gt2, (1,), False)
    if groups == 1:
        gt3, cols = gt2, ctx.cols
        w_t = L.view(_transpose_fn, ctx.w2, (1, 0))
    else:
        gt3 = L.view(_reshape_fn, gt, (groups, o // groups, m))
        cols = L.view(_reshape_fn, ctx.cols, (groups, k // groups, m))
        w_t = L.view(_transpose_fn, ctx.w2, (0, 2, 1))
    if need_w:  # NOTE: cols @ g.T (K, O) runs ~2x faster in OpenBLAS than g @ cols.T (O, K); one small copy after
        swap = (1, 0) if groups == 1 else (0, 2, 1)
        gemm = skinny_gemm if groups == 1 and k * o <= _SKINNY else kernels.matmul
        gw_t = L.extern(gemm, (cols, L.view(_transpose_fn, gt3, swap)), (*cols.shape[:-1], gt3.shape[-2]), ctx.dtype)
        gw = L.pw("cast", L.view(_transpose_fn, gw_t, swap), dtype=ctx.dtype)
        grad_w = L.view(_reshape_fn, gw, ctx.w.shape)
    if need_x:
        gcols = L.extern(kernels.matmul, (w_t, gt3), (*w_t.shape[:-1], m), ctx.dtype)
        if groups != 1:
            gcols = L.view(_reshape_fn, gcols, (k, m))
        grad_x = L.extern(ctx.col2im, (gcols,), ctx.x.shape, ctx.dtype)
    return (grad_x, grad_w, grad_b, None, None, None, None)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
