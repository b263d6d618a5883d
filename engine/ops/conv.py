"""Convolutions (1-d/2-d, transposed) as im2col + GEMM, with a col2im backward.

An input (N, C, H, W) is unfolded by one strided copy; the products are GEMMs over the whole batch.
The input gradient folds the columns back with kh*kw strided adds (a loop over kernel offsets,
never over the batch).
"""

from __future__ import annotations

from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.dtypes import bfloat16, float16, float32
from engine.tensor import Tensor, _make


def _no_double_backward(name: str) -> None:
    if state.enabled:
        raise RuntimeError(f"double backward (create_graph=True) through {name} is not supported")


def _compute_dtype(dtype):
    # NOTE: NumPy has no half-precision BLAS: compute in float32 and cast back.
    return float32.np if dtype is float16 or dtype is bfloat16 else None


def pad_array(xp, data, pads, value=0.0):
    """Pad the last two axes by pads = (top, bottom, left, right) with a constant."""
    top, bottom, left, right = pads
    if not (top or bottom or left or right):
        return data
    n, c, h, w = data.shape
    out = xp.full((n, c, h + top + bottom, w + left + right), value, dtype=data.dtype)
    out[:, :, top:top + h, left:left + w] = data
    return out


def windows(xp, padded, kernel, stride, dilation, out_hw):
    """A strided view (N, C, kh, kw, Ho, Wo) of every kernel window of a padded input."""
    n, c = padded.shape[:2]
    s_n, s_c, s_h, s_w = padded.strides
    shape = (n, c, kernel[0], kernel[1], out_hw[0], out_hw[1])
    strides = (s_n, s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1])
    return xp.lib.stride_tricks.as_strided(padded, shape, strides, writeable=False)


def fold(xp, cols, padded_hw, stride, dilation):
    """col2im: sum columns (N, C, kh, kw, Ho, Wo) back into a padded (N, C, Hp, Wp) array."""
    n, c, kh, kw, ho, wo = cols.shape
    out = xp.zeros((n, c, padded_hw[0], padded_hw[1]), dtype=cols.dtype)
    sh, sw = stride
    for i in range(kh):
        r = i * dilation[0]
        for j in range(kw):
            q = j * dilation[1]
            out[:, :, r:r + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw] += cols[:, :, i, j]
    return out


def crop(data, pads):
    top, bottom, left, right = pads
    h, w = data.shape[2:]
    return data[:, :, top:h - bottom, left:w - right]


def conv_out_size(size: int, k: int, stride: int, pad_total: int, dilation: int) -> int:
    return (size + pad_total - dilation * (k - 1) - 1) // stride + 1


def window_rows(xp, x, pads, kernel, stride, dilation, out_hw):
    """im2col as rows: (N*Ho*Wo, kh*kw*C), each row one window in (kh, kw, C) order.

    NOTE: the input is first copied into a zero-padded NHWC buffer, so every window row is built
    from contiguous runs of C values (an order of magnitude faster than gathering NCHW windows).
    """
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    padded = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    padded[:, top:top + h, left:left + w, :] = x.transpose(0, 2, 3, 1)
    s_n, s_h, s_w, s_c = padded.strides
    shape = (n, out_hw[0], out_hw[1], kernel[0], kernel[1], c)
    strides = (s_n, s_h * stride[0], s_w * stride[1], s_h * dilation[0], s_w * dilation[1], s_c)
    view = xp.lib.stride_tricks.as_strided(padded, shape, strides, writeable=False)
    return xp.ascontiguousarray(view).reshape(n * out_hw[0] * out_hw[1], kernel[0] * kernel[1] * c)


def fold_rows(xp, rows, x_shape, pads, kernel, stride, dilation, out_hw):
    """col2im of window rows (N*Ho*Wo, kh*kw*C) back to an (N, C, H, W) gradient."""
    n, c, h, w = x_shape
    top, bottom, left, right = pads
    ho, wo = out_hw
    cols = rows.reshape(n, ho, wo, kernel[0], kernel[1], c)
    out = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=rows.dtype)
    sh, sw = stride
    for i in range(kernel[0]):
        r = i * dilation[0]
        for j in range(kernel[1]):
            q = j * dilation[1]
            out[:, r:r + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw, :] += cols[:, :, :, i, j, :]
    return out[:, top:top + h, left:left + w, :].transpose(0, 3, 1, 2)


def _grouped(rows, groups: int, taps: int):
    """(N*L, kh*kw*C) rows -> (G, N*L, kh*kw*C/G) per-group rows."""
    return rows.reshape(rows.shape[0], taps, groups, -1).transpose(2, 0, 1, 3).reshape(groups, rows.shape[0], -1)


class Conv2d(Op):
    """Grouped 2-d cross-correlation; padding is (top, bottom, left, right).

    NOTE: windows are unfolded as rows (N*Ho*Wo, kh*kw*C) so that the forward, the weight gradient
    and the column gradient are each one GEMM over the whole batch (batched small GEMMs are slower).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, pads, dilation, groups):
        xp = x._device.xp
        xd, wd = x._data, w._data
        acc = _compute_dtype(x._dtype)
        if acc is not None:
            xd, wd = xd.astype(acc), wd.astype(acc)
        n, _, h, wi = xd.shape
        o, _, kh, kw = wd.shape
        ho = conv_out_size(h, kh, stride[0], pads[0] + pads[1], dilation[0])
        wo = conv_out_size(wi, kw, stride[1], pads[2] + pads[3], dilation[1])
        if ho <= 0 or wo <= 0:
            raise RuntimeError(f"Calculated output size: ({o}x{max(ho, 0)}x{max(wo, 0)}). Output size is too small")
        rows = window_rows(xp, xd, pads, (kh, kw), stride, dilation, (ho, wo))
        wm = wd.transpose(0, 2, 3, 1)  # (O, kh, kw, C/G): the rows' column order
        if groups == 1:
            out = rows @ wm.reshape(o, -1).T
        else:
            og = o // groups
            wg = wm.reshape(groups, og, -1)
            out = xp.matmul(_grouped(rows, groups, kh * kw), wg.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(-1, o)
        if b is not None:
            out += b._data.astype(out.dtype, copy=False)
        out = xp.ascontiguousarray(out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2))
        if ctx._recording:
            ctx.rows = rows
            ctx.meta = (xd.shape, stride, pads, dilation, groups)
            ctx.save_for_backward(x, w)
        return out if acc is None else out.astype(x._dtype.np)

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("conv")
        x, w = ctx.saved_tensors
        xp = x._device.xp
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        x_shape, stride, pads, dilation, groups = ctx.meta
        rows = ctx.rows
        o, cg, kh, kw = w._data.shape
        gd, wd = g._data, w._data
        if rows.dtype != gd.dtype:
            gd, wd = gd.astype(rows.dtype), wd.astype(rows.dtype)
        ho, wo = gd.shape[2:]
        g_rows = xp.ascontiguousarray(gd.transpose(0, 2, 3, 1)).reshape(-1, o)
        grad_x = grad_w = grad_b = None
        og = o // groups
        if groups > 1:
            g_groups = g_rows.reshape(-1, groups, og).transpose(1, 0, 2)
        if need_w:
            if groups == 1:
                gw = g_rows.T @ rows
            else:
                gw = xp.matmul(g_groups.transpose(0, 2, 1), _grouped(rows, groups, kh * kw))
            gw = gw.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2)
            grad_w = _make(xp.ascontiguousarray(gw, dtype=w._dtype.np), w._dtype, w._device)
        if need_b:
            grad_b = _make(gd.sum(axis=(0, 2, 3)).astype(w._dtype.np, copy=False), w._dtype, w._device)
        if need_x:
            wm = wd.transpose(0, 2, 3, 1)
            if groups == 1:
                g_cols = g_rows @ wm.reshape(o, -1)
            else:
                per_group = xp.matmul(g_groups, wm.reshape(groups, og, -1))  # (G, N*L, kh*kw*C/G)
                g_cols = per_group.reshape(groups, -1, kh * kw, cg).transpose(1, 2, 0, 3)
            gx = fold_rows(xp, g_cols.reshape(-1, kh * kw * cg * groups), x_shape, pads, (kh, kw), stride,
                           dilation, (ho, wo))
            grad_x = _make(xp.ascontiguousarray(gx, dtype=x._dtype.np), x._dtype, x._device)
        return grad_x, grad_w, grad_b, None, None, None, None

    def _release_extra(self) -> None:
        self.rows = None


class ConvTranspose2d(Op):
    """The adjoint of Conv2d with respect to its input (a "deconvolution"); ``offset`` = (top, left) crop."""

    @staticmethod
    def forward(ctx, x, w, b, stride, offset, dilation, groups, out_hw):
        xp = x._device.xp
        xd, wd = x._data, w._data
        acc = _compute_dtype(x._dtype)
        if acc is not None:
            xd, wd = xd.astype(acc), wd.astype(acc)
        n, c, h, wi = xd.shape
        _, og, kh, kw = wd.shape
        o = og * groups
        canvas = _canvas(offset, out_hw, (h, wi), (kh, kw), stride, dilation)
        wm = wd.reshape(groups, c // groups, og * kh * kw)
        x4 = xd.reshape(n, groups, c // groups, h * wi)
        cols = xp.matmul(wm.transpose(0, 2, 1), x4).reshape(n, o, kh, kw, h, wi)
        top, left = offset
        out = fold(xp, cols, canvas, stride, dilation)[:, :, top:top + out_hw[0], left:left + out_hw[1]]
        out = xp.ascontiguousarray(out)
        if b is not None:
            out += b._data.reshape(1, o, 1, 1).astype(out.dtype, copy=False)
        ctx.meta = (canvas, stride, offset, dilation, groups)
        ctx.save_for_backward(x, w)
        return out if acc is None else out.astype(x._dtype.np)

    @staticmethod
    def backward(ctx, g):
        _no_double_backward("conv_transpose")
        x, w = ctx.saved_tensors
        xp = x._device.xp
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        canvas, stride, (top, left), dilation, groups = ctx.meta
        xd, wd, gd = x._data, w._data, g._data
        acc = _compute_dtype(x._dtype)
        if acc is not None:
            xd, wd, gd = xd.astype(acc), wd.astype(acc), gd.astype(acc)
        n, c, h, wi = xd.shape
        _, og, kh, kw = wd.shape
        padded = xp.zeros((n, gd.shape[1], canvas[0], canvas[1]), gd.dtype)
        padded[:, :, top:top + gd.shape[2], left:left + gd.shape[3]] = gd
        cols = xp.ascontiguousarray(windows(xp, padded, (kh, kw), stride, dilation, (h, wi)))
        cols = cols.reshape(n, groups, og * kh * kw, h * wi)
        grad_x = grad_w = grad_b = None
        if need_x:
            wm = wd.reshape(groups, c // groups, og * kh * kw)
            gx = xp.matmul(wm, cols).reshape(xd.shape)
            grad_x = _make(gx.astype(x._dtype.np, copy=False), x._dtype, x._device)
        if need_w:
            x4 = xd.reshape(n, groups, c // groups, h * wi)
            gw = xp.matmul(x4, cols.transpose(0, 1, 3, 2)).sum(axis=0).reshape(wd.shape)
            grad_w = _make(gw.astype(w._dtype.np, copy=False), w._dtype, w._device)
        if need_b:
            grad_b = _make(gd.sum(axis=(0, 2, 3)).astype(w._dtype.np, copy=False), w._dtype, w._device)
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _canvas(offset, out_hw, in_hw, kernel, stride, dilation) -> tuple:
    """Size of the array a transposed conv folds into: it must hold every window and the output crop."""
    return tuple(max(o + out, (i - 1) * s + d * (k - 1) + 1) for o, out, i, s, d, k in
                 zip(offset, out_hw, in_hw, stride, dilation, kernel, strict=True))


def _pair(value, n: int = 2) -> tuple:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


def _check_conv(input: Tensor, weight: Tensor, groups: int, dims: int, transposed: bool = False) -> None:
    if input._data.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to conv{dims}d, but got "
                           f"input of size: {list(input._data.shape)}")
    channels = input._data.shape[-dims - 1]
    expected = weight._data.shape[0] if transposed else weight._data.shape[1] * groups
    if channels != expected:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight._data.shape)}, expected input"
                           f"{list(input._data.shape)} to have {expected} channels, but got {channels} channels "
                           "instead")
    if input._dtype is not weight._dtype:
        raise RuntimeError(f"Input type ({input._dtype.name}) and weight type ({weight._dtype.name}) should be the same")


def _same_pads(kernel, dilation) -> tuple:
    pads = []
    for k, d in zip(kernel, dilation, strict=True):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-d convolution over (N, C, H, W) (or unbatched (C, H, W)) input."""
    _check_conv(input, weight, groups, 2)
    if input._data.ndim == 3:
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    stride, dilation = _pair(stride), _pair(dilation)
    kernel = weight._data.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            pads = _same_pads(kernel, dilation)
        else:
            raise RuntimeError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
    else:
        ph, pw = _pair(padding)
        pads = (ph, ph, pw, pw)
    return Conv2d.apply(input, weight, bias, stride, pads, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """1-d convolution over (N, C, L) (or unbatched (C, L)) input, computed as a conv2d of height 1."""
    _check_conv(input, weight, groups, 1)
    if input._data.ndim == 2:
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    if not isinstance(padding, str):
        padding = (0, _pair(padding, 1)[0])
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, _pair(stride, 1)[0]), padding,
                 (1, _pair(dilation, 1)[0]), groups)
    return out.squeeze(2)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1) -> Tensor:
    """Transposed 2-d convolution (the gradient of conv2d with respect to its input)."""
    _check_conv(input, weight, groups, 2, transposed=True)
    if input._data.ndim == 3:
        return conv_transpose2d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    stride, padding, dilation, output_padding = _pair(stride), _pair(padding), _pair(dilation), _pair(output_padding)
    kernel = weight._data.shape[2:]
    out_hw = tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, s, p, d, k, op in
                   zip(input._data.shape[2:], stride, padding, dilation, kernel, output_padding, strict=True))
    for op, s, d in zip(output_padding, stride, dilation, strict=True):
        if op >= s and op >= d:
            raise RuntimeError("output padding must be smaller than either stride or dilation")
    return ConvTranspose2d.apply(input, weight, bias, stride, padding, dilation, groups, out_hw)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1) -> Tensor:
    """Transposed 1-d convolution, computed as a transposed conv2d of height 1."""
    if input._data.ndim == 2:
        return conv_transpose1d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    out = conv_transpose2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, _pair(stride, 1)[0]),
                           (0, _pair(padding, 1)[0]), (0, _pair(output_padding, 1)[0]), groups,
                           (1, _pair(dilation, 1)[0]))
    return out.squeeze(2)
