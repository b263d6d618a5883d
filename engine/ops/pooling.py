"""Pooling: max / average pooling (1-d, 2-d) and adaptive average pooling, vectorised over the batch.

Windows are visited by a loop over the kh*kw kernel offsets, each step one strided array op over
the whole batch.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.ops import grad_math as gm
from engine.ops.conv import fold, pad_array
from engine.tensor import Tensor, _make


def _pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input or left pad
        out -= 1
    return out


def _geometry(shape, kernel, stride, padding, dilation, ceil_mode):
    """Output size and (top, bottom, left, right) pads, the bottom/right ones grown for ceil_mode."""
    h, w = shape[2:]
    ho = _pool_out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    wo = _pool_out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    bottom = max(padding[0], (ho - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - h - padding[0])
    right = max(padding[1], (wo - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - w - padding[1])
    return (ho, wo), (padding[0], bottom, padding[1], right)


def _tap(padded, i, j, kernel_out, stride, dilation):
    """The strided (N, C, Ho, Wo) slice of a padded input seen by kernel offset (i, j)."""
    ho, wo = kernel_out
    r, q = i * dilation[0], j * dilation[1]
    return padded[:, :, r:r + stride[0] * (ho - 1) + 1:stride[0], q:q + stride[1] * (wo - 1) + 1:stride[1]]


def _arg_dtype(xp, kernel):
    return xp.uint8 if kernel[0] * kernel[1] < 256 else xp.int32


def _max_taps(xp, data, kernel, stride, pads, dilation, out_hw, floating):
    """Max and first argmax (kernel offset i*kw + j) over every window, one strided op per offset."""
    fill = -xp.inf if floating else xp.iinfo(data.dtype).min
    padded = pad_array(xp, data, pads, fill)
    best = _tap(padded, 0, 0, out_hw, stride, dilation).copy()
    arg = xp.zeros(best.shape, dtype=_arg_dtype(xp, kernel))
    for k in range(1, kernel[0] * kernel[1]):
        value = _tap(padded, k // kernel[1], k % kernel[1], out_hw, stride, dilation)
        # NOTE: like PyTorch, a later value wins if it is larger or NaN (so NaN propagates, last NaN wins).
        changed = value > best
        if floating:
            changed |= xp.isnan(value)
        xp.copyto(best, value, where=changed)
        xp.copyto(arg, k, where=changed)
    return best, arg


def _tiles(data, kernel):
    """The (N, C, Ho, Wo) strided views of each kernel offset when windows tile the input exactly."""
    n, c, h, w = data.shape
    kh, kw = kernel
    tiles = data.reshape(n, c, h // kh, kh, w // kw, kw)
    return [tiles[:, :, :, k // kw, :, k % kw] for k in range(kh * kw)]


def _blocks(n: int, per_sample: int, cache_sized: bool):
    """Batch slices sized so one block's input stays in cache (CPU), else the whole batch.

    NOTE: every kernel offset re-reads the input; on cache-sized blocks that is ~30% faster.
    """
    step = max(1, _BLOCK_ELEMENTS // per_sample) if cache_sized else n
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


_BLOCK_ELEMENTS = 1 << 19  # input values of one block: 2 MiB of float32


def _max_tiles(xp, data, kernel, floating, cache_sized):
    """_max_taps for windows that tile the input exactly (kernel == stride, no padding or dilation).

    The max is a running maximum over the kernel offsets; the argmax is the first offset equal to
    it, built with integer arithmetic (arg = ne0 * (1 + ne1 * (1 + ...)), ne = "offset != max").
    """
    n, c, h, w = data.shape
    shape = (n, c, h // kernel[0], w // kernel[1])
    best, arg = xp.empty(shape, dtype=data.dtype), xp.zeros(shape, dtype=_arg_dtype(xp, kernel))
    differs = None
    for block in _blocks(n, c * h * w, cache_sized):
        taps, out, index = _tiles(data[block], kernel), best[block], arg[block]
        value = taps[0]
        for other in taps[1:-1]:
            value = xp.maximum(value, other)  # NOTE: propagates NaN, as PyTorch does
        if len(taps) > 1:
            xp.maximum(value, taps[-1], out=out)
        else:
            xp.copyto(out, value)
        if differs is None or differs.shape != out.shape:
            differs = xp.empty(out.shape, dtype=bool)
        for other in reversed(taps[:-1]):
            index += 1
            xp.not_equal(other, out, out=differs)
            index *= differs
    # A NaN is unequal to itself: PyTorch picks the last NaN. On CPU a cheap check skips the fix-up; on a GPU
    # the check would copy to the host every call, so the fix-up always runs there.
    if floating and (xp is not np or bool(xp.isnan(best).any())):
        for k, value in enumerate(_tiles(data, kernel)):
            xp.copyto(arg, k, where=xp.isnan(value))
    return best, arg


class MaxPool2d(Op):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
        xp = x._device.xp
        data = x._data
        out_hw, pads = _geometry(data.shape, kernel, stride, padding, dilation, ceil_mode)
        tiled = kernel == stride and dilation == (1, 1) and not any(pads) and \
            (out_hw[0] * kernel[0], out_hw[1] * kernel[1]) == data.shape[2:]
        if tiled:
            best, arg = _max_tiles(xp, data, kernel, x._dtype.is_floating_point, x._device.type == "cpu")
            padded_shape = data.shape
        else:
            best, arg = _max_taps(xp, data, kernel, stride, pads, dilation, out_hw, x._dtype.is_floating_point)
            padded_shape = (*data.shape[:2], data.shape[2] + pads[0] + pads[1], data.shape[3] + pads[2] + pads[3])
        ctx.meta = (data.shape, kernel, stride, pads, dilation, padded_shape)
        ctx.arg, ctx.tiled = arg, tiled
        ctx.save_for_backward(x)  # as PyTorch's: under create_graph x is an input of zero gradient
        return best

    @staticmethod
    def backward(ctx, g):
        shape, kernel, stride, pads, dilation, padded_shape = ctx.meta
        if state.enabled:  # create_graph: a backward that can itself be differentiated (engine.ops.pool_double)
            from engine.ops.pool_double import max_pool2d_differentiable_backward

            (x,) = ctx.saved_tensors
            grad_x = max_pool2d_differentiable_backward(g, ctx.arg, shape, kernel, stride, pads, dilation)
            return gm.keep_input(grad_x, x), None, None, None, None, None
        xp = g._device.xp
        gd = g._data
        out_hw = gd.shape[2:]
        top, _, left, _ = pads
        if ctx.tiled:
            gx = xp.empty(shape, gd.dtype)
            for block in _blocks(shape[0], gx[0].size, g._device.type == "cpu"):
                index = ctx.arg[block]
                for k, tap in enumerate(_tiles(gx[block], kernel)):
                    xp.multiply(gd[block], index == k, out=tap)
            return _make(gx, g._dtype, g._device), None, None, None, None, None
        if all(s >= d * (k - 1) + 1 for s, d, k in zip(stride, dilation, kernel, strict=True)):
            # windows don't overlap: each kernel offset writes its own strided slice, no summing needed
            padded = xp.zeros((*gd.shape[:2], *padded_shape[2:]), gd.dtype)
            k = 0
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    xp.multiply(gd, ctx.arg == k, out=_tap(padded, i, j, out_hw, stride, dilation))
                    k += 1
        else:
            cols = xp.zeros((*gd.shape[:2], kernel[0], kernel[1], *out_hw), gd.dtype)
            k = 0
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    cols[:, :, i, j] = gd * (ctx.arg == k)
                    k += 1
            padded = fold(xp, cols, padded_shape[2:], stride, dilation)
        gx = xp.ascontiguousarray(padded[:, :, top:top + shape[2], left:left + shape[3]])
        return _make(gx, g._dtype, g._device), None, None, None, None, None

    def _release_extra(self) -> None:
        self.arg = None


def max_indices(arg, shape, kernel, stride, pads, dilation, xp):
    """PyTorch's return_indices: the flat h*W + w position of each maximum in the unpadded input."""
    ho, wo = arg.shape[2:]
    a = arg.astype(xp.int64)
    rows = xp.arange(ho).reshape(ho, 1) * stride[0] - pads[0] + (a // kernel[1]) * dilation[0]
    cols = xp.arange(wo).reshape(1, wo) * stride[1] - pads[2] + (a % kernel[1]) * dilation[1]
    return rows * shape[3] + cols


class AvgPool2d(Op):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        xp = x._device.xp
        data = x._data
        out_hw, pads = _geometry(data.shape, kernel, stride, padding, (1, 1), ceil_mode)
        padded = pad_array(xp, data, pads)
        total = _tap(padded, 0, 0, out_hw, stride, (1, 1)).copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i or j:
                    total += _tap(padded, i, j, out_hw, stride, (1, 1))
        divisor = _divisor(xp, data.shape[2:], out_hw, kernel, stride, padding, count_include_pad,
                           divisor_override, data.dtype)
        ctx.meta = (data.shape, kernel, stride, pads, padded.shape, divisor)
        ctx.save_for_backward(x)
        return total / divisor

    @staticmethod
    def backward(ctx, g):
        shape, kernel, stride, pads, padded_shape, divisor = ctx.meta
        grad_x = avg_pool_backward(g, shape, kernel, stride, pads, padded_shape, divisor)
        if state.enabled:  # as PyTorch's: under create_graph x is an input of zero gradient
            grad_x = gm.keep_input(grad_x, ctx.saved_tensors[0])
        return grad_x, None, None, None, None, None, None


def avg_pool_backward(g, shape, kernel, stride, pads, padded_shape, divisor):
    if state.enabled:  # create_graph: a backward that can itself be differentiated (engine.ops.pool_double)
        from engine.ops.pool_double import avg_pool2d_differentiable_backward

        return avg_pool2d_differentiable_backward(g, shape, kernel, stride, pads, divisor)
    xp = g._device.xp
    share = g._data / divisor
    cols = xp.broadcast_to(share[:, :, None, None], (*share.shape[:2], kernel[0], kernel[1], *share.shape[2:]))
    gx = fold(xp, cols, padded_shape[2:], stride, (1, 1))
    top, _, left, _ = pads
    gx = xp.ascontiguousarray(gx[:, :, top:top + shape[2], left:left + shape[3]])
    return _make(gx, g._dtype, g._device)


def _divisor(xp, in_hw, out_hw, kernel, stride, padding, count_include_pad, divisor_override, dtype):
    """Per-output-position divisor (Ho, Wo), following PyTorch's window clipping rules."""
    if divisor_override:
        return dtype.type(divisor_override)
    sizes = []  # NOTE: computed on the host (it depends on shapes only), so a GPU needs no sync for it
    for n_out, size, k, s, p in zip(out_hw, in_hw, kernel, stride, padding, strict=True):
        start = np.arange(n_out) * s - p
        end = np.minimum(start + k, size + p)
        if count_include_pad:
            sizes.append(end - start)
        else:
            sizes.append(np.minimum(end, size) - np.maximum(start, 0))
    out = (sizes[0].reshape(-1, 1) * sizes[1].reshape(1, -1)).astype(dtype)
    if (out == out.flat[0]).all():
        return dtype.type(out.flat[0])
    return out if xp is np else xp.asarray(out)


def _pair(value) -> tuple:
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    return value * 2 if len(value) == 1 else value


def _check_pool(input: Tensor, kernel, padding, dims: int) -> None:
    if input._data.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(f"Expected {dims + 1}D or {dims + 2}D input to pooling, got {list(input._data.shape)}")
    for k, p in zip(kernel, padding, strict=True):
        if p * 2 > k:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p}, "
                               f"kernel_size={k}")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-d max pooling; with ``return_indices`` also the flat positions of the maxima."""
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    _check_pool(input, kernel, padding, 2)
    if input._data.ndim == 3:
        out = max_pool2d(input.unsqueeze(0), kernel, stride, padding, dilation, ceil_mode, return_indices)
        return (out[0].squeeze(0), out[1].squeeze(0)) if return_indices else out.squeeze(0)
    out = MaxPool2d.apply(input, kernel, stride, padding, dilation, ceil_mode)
    if not return_indices:
        return out
    node = out.grad_fn
    if node is None:  # no graph was recorded: run the op directly to reach its argmax
        ctx = object.__new__(MaxPool2d)
        MaxPool2d.forward(ctx, input, kernel, stride, padding, dilation, ceil_mode)
        node = ctx
    shape, kernel, stride, pads, dilation, _ = node.meta
    indices = max_indices(node.arg, shape, kernel, stride, pads, dilation, input._device.xp)
    from engine.tensor import wrap

    return out, wrap(indices, input._device)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-d max pooling over (N, C, L), as a 2-d pooling of height 1."""
    if input._data.ndim == 2:
        out = max_pool1d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        return (out[0].squeeze(0), out[1].squeeze(0)) if return_indices else out.squeeze(0)
    one = _single
    stride = one(kernel_size) if stride is None or stride == [] or stride == () else one(stride)
    out = max_pool2d(input.unsqueeze(2), (1, one(kernel_size)), (1, stride), (0, one(padding)), (1, one(dilation)),
                     ceil_mode, return_indices)
    if return_indices:
        return out[0].squeeze(2), out[1].squeeze(2)
    return out.squeeze(2)


def _single(value) -> int:
    return value if isinstance(value, int) else next(iter(value))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override=None) -> Tensor:
    """2-d average pooling."""
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    padding = _pair(padding)
    _check_pool(input, kernel, padding, 2)
    if input._data.ndim == 3:
        return avg_pool2d(input.unsqueeze(0), kernel, stride, padding, ceil_mode, count_include_pad,
                          divisor_override).squeeze(0)
    return AvgPool2d.apply(input, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-d average pooling over (N, C, L)."""
    if input._data.ndim == 2:
        return avg_pool1d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode, count_include_pad).squeeze(0)
    one = _single
    stride = one(kernel_size) if stride is None or stride == [] or stride == () else one(stride)
    return avg_pool2d(input.unsqueeze(2), (1, one(kernel_size)), (1, stride), (0, one(padding)), ceil_mode,
                      count_include_pad).squeeze(2)


def _adaptive_matrix(xp, size: int, out: int, dtype):
    """(out, size) averaging matrix of PyTorch's adaptive pooling windows [floor(i*s/o), ceil((i+1)*s/o))."""
    m = xp.zeros((out, size), dtype=dtype)
    for i in range(out):
        start = (i * size) // out
        end = -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling to a fixed output size (None keeps that input size)."""
    from engine.ops.linalg import einsum
    from engine.tensor import wrap

    out = _pair(output_size)
    h, w = input._data.shape[-2:]
    oh = h if out[0] is None else out[0]
    ow = w if out[1] is None else out[1]
    if (oh, ow) == (1, 1):  # NOTE: a mean, as in PyTorch (so its double backward keeps no zero-gradient input)
        return input.mean((-2, -1), keepdim=True)
    if h % oh == 0 and w % ow == 0:
        kernel = (h // oh, w // ow)
        return avg_pool2d(input, kernel, kernel)
    xp = input._device.xp
    mh = wrap(_adaptive_matrix(xp, h, oh, input._dtype.np), input._device)
    mw = wrap(_adaptive_matrix(xp, w, ow, input._dtype.np), input._device)
    return einsum("...hw,ph,qw->...pq", input, mh, mw)


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, _single(output_size))).squeeze(-2)


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Max pooling to a fixed output size (windows as in adaptive average pooling)."""
    from engine.ops.shape import stack

    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d(return_indices=True) is not supported")
    out = _pair(output_size)
    h, w = input._data.shape[-2:]
    oh = h if out[0] is None else out[0]
    ow = w if out[1] is None else out[1]
    if h % oh == 0 and w % ow == 0:
        kernel = (h // oh, w // ow)
        return max_pool2d(input, kernel, kernel)
    rows = []
    for i in range(oh):
        r0, r1 = (i * h) // oh, math.ceil((i + 1) * h / oh)
        cells = []
        for j in range(ow):
            c0, c1 = (j * w) // ow, math.ceil((j + 1) * w / ow)
            cells.append(input[..., r0:r1, c0:c1].amax(dim=(-2, -1)))
        rows.append(stack(cells, -1))
    return stack(rows, -2)
