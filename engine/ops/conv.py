"""Convolutions (1-d/2-d, transposed) as im2col + GEMM, with a col2im backward.

An input (N, C, H, W) is copied once into a zero-padded channel-major buffer; each cache-sized block
of the batch is unfolded from it by one strided copy and multiplied by one GEMM. The input gradient
folds the columns back with kh*kw strided adds (loops over kernel offsets and batch blocks, never
over single samples).
"""

from __future__ import annotations

from contextlib import nullcontext

from engine.amp import autocast_state
from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.dtypes import bfloat16, float16, float32
from engine.tensor import Tensor, _make


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
    return xp.lib.stride_tricks.as_strided(padded, shape, strides)  # NOTE: CuPy's takes no ``writeable``


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


class _Grid:
    """Where Conv2d's windows live: a zero-padded, channel-major buffer (C, N*Hp*Wp + tail).

    Outputs are computed on an (N, Ho, Wg) grid. With a unit column stride, Wg = Wp ("wide"): the
    Wp - Wo extra columns per row are junk (computed, then dropped), but every window row of every
    kernel tap is then one contiguous run of Ho*Wp values, so unfolding and folding are long copies.
    """

    def __init__(self, x_shape, pads, kernel, stride, dilation, out_hw):
        n, c, h, w = x_shape
        top, bottom, left, right = pads
        self.n, self.c, self.hw, self.pads = n, c, (h, w), pads
        self.hp, self.wp = h + top + bottom, w + left + right
        self.kernel, self.stride, self.dilation, (self.ho, self.wo) = kernel, stride, dilation, out_hw
        self.wg = self.wp if stride[1] == 1 and 4 * self.wp <= 5 * self.wo else self.wo
        self.tail = dilation[1] * (kernel[1] - 1)  # the last junk columns read this far past the buffer

    def blocks(self, cache_sized: bool):
        """Batch slices to work through: on the CPU, sized so a block's columns stay in cache.

        NOTE: folding and the GEMMs run ~30% faster on cache-sized blocks than on the whole batch.
        """
        per_sample = self.c * self.kernel[0] * self.kernel[1] * self.ho * self.wg
        step = max(1, _BLOCK_ELEMENTS // per_sample) if cache_sized else self.n
        return [slice(start, min(start + step, self.n)) for start in range(0, self.n, step)]

    def _image(self, buf):
        return buf[:, :self.n * self.hp * self.wp].reshape(self.c, self.n, self.hp, self.wp)

    def pad(self, xp, data):
        """(N, C, H, W) -> the padded buffer (C, N*Hp*Wp + tail)."""
        (h, w), (top, _, left, _) = self.hw, self.pads
        buf = xp.zeros((self.c, self.n * self.hp * self.wp + self.tail), dtype=data.dtype)
        self._image(buf)[:, :, top:top + h, left:left + w] = data.transpose(1, 0, 2, 3)
        return buf

    def crop(self, buf, out, block):
        """Copy a block of samples of the padded buffer into ``out`` (N, C, H, W) (the inverse of ``pad``)."""
        (h, w), (top, _, left, _) = self.hw, self.pads
        out[block] = self._image(buf)[:, block, top:top + h, left:left + w].transpose(1, 0, 2, 3)

    def taps(self, xp, buf, block):
        """A strided view (C, kh, kw, B, Ho, Wg) of a block's windows: every value of every kernel tap."""
        item = buf.itemsize
        row = self.wp * item
        strides = (buf.strides[0], self.dilation[0] * row, self.dilation[1] * item, self.hp * row,
                   self.stride[0] * row, self.stride[1] * item)
        shape = (self.c, *self.kernel, block.stop - block.start, self.ho, self.wg)
        start = buf[:, block.start * self.hp * self.wp:]
        return xp.lib.stride_tricks.as_strided(start, shape, strides)  # NOTE: CuPy's takes no ``writeable``

    def unfold(self, xp, buf, block):
        """im2col: a block's columns (C*kh*kw, B*Ho*Wg), rows in the weight's (C, kh, kw) order."""
        cols = xp.ascontiguousarray(self.taps(xp, buf, block))
        return cols.reshape(self.c * self.kernel[0] * self.kernel[1], -1)

    def fold(self, xp, buf, cols, block):
        """col2im: add a block's columns (C*kh*kw, B*Ho*Wg) into the padded buffer, one add per kernel tap."""
        view = self.taps(xp, buf, block)
        cols = cols.reshape(view.shape)
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                view[:, i, j] += cols[:, i, j]

    def to_grid(self, xp, data):
        """(B, O, Ho, Wo) -> (O, B*Ho*Wg), zero in the junk columns."""
        b, o = data.shape[:2]
        if self.wg == self.wo:
            return xp.ascontiguousarray(data.transpose(1, 0, 2, 3)).reshape(o, -1)
        grid = xp.empty((o, b, self.ho, self.wg), dtype=data.dtype)
        grid[..., self.wo:] = 0
        grid[..., :self.wo] = data.transpose(1, 0, 2, 3)
        return grid.reshape(o, -1)

    def from_grid(self, grid, out, block):
        """(O, B*Ho*Wg) -> a block of samples of ``out`` (N, O, Ho, Wo)."""
        o = grid.shape[0]
        out[block] = grid.reshape(o, -1, self.ho, self.wg)[..., :self.wo].transpose(1, 0, 2, 3)


_BLOCK_ELEMENTS = 1 << 19  # columns of one block: 2 MiB of float32


def _blas_threads(grid: _Grid, o: int, groups: int, cpu: bool):
    """The BLAS threads a conv's block GEMMs run on: one when a block's GEMM is small or the cores are busy.

    NOTE: OpenBLAS splits even these cache-sized GEMMs over its threads, which spin-wait for each other;
    on a shared machine a descheduled partner stalls every GEMM (the CNN benchmark's eager step on 2 cores
    at load 6: 1487 ms wall on two threads, 355 ms on one). The rule is engine.compile's (``kernels.matmul``).
    """
    if not cpu:
        return nullcontext()
    from engine._inductor.kernels import _SMALL_GEMM, _cores_busy, _one_blas_thread

    block = grid.blocks(True)[0]
    k = grid.c // groups * grid.kernel[0] * grid.kernel[1]
    macs = o * k * (block.stop - block.start) * grid.ho * grid.wg
    return _one_blas_thread() if macs < _SMALL_GEMM or _cores_busy() else nullcontext()


def _gemm(xp, a, b, groups):
    """a @ b where a is (G*M, K) and b is (G*K', N), group by group: (G*M, N)."""
    if groups == 1:
        return a @ b
    return xp.matmul(a.reshape(groups, a.shape[0] // groups, -1), b.reshape(groups, -1, b.shape[1])) \
        .reshape(a.shape[0], -1)


class Conv2d(Op):
    """Grouped 2-d cross-correlation; padding is (top, bottom, left, right).

    NOTE: the input is unfolded channel-major, columns (C*kh*kw, B*Ho*Wg), so that the forward, the
    weight gradient and the column gradient are each one GEMM per block of the batch whose operands
    need no transposed copies, and results come back to NCHW by copies of whole rows. The backward
    unfolds again from the saved padded input rather than keeping every column.
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
        grid = _Grid(xd.shape, pads, (kh, kw), stride, dilation, (ho, wo))
        buf = grid.pad(xp, xd)
        wm = wd.reshape(o, -1)
        bias = None if b is None else b._data.astype(xd.dtype, copy=False).reshape(o, 1)
        out = xp.empty((n, o, ho, wo), dtype=xd.dtype)
        cpu = x._device.type == "cpu"
        with _blas_threads(grid, o, groups, cpu):
            for block in grid.blocks(cpu):
                y = _gemm(xp, wm, grid.unfold(xp, buf, block), groups)
                if bias is not None:
                    y += bias
                grid.from_grid(y, out, block)
        if ctx._recording:
            ctx.buf, ctx.grid, ctx.groups = buf, grid, groups
            ctx.save_for_backward(x, w)
        return out if acc is None else out.astype(x._dtype.np)

    @staticmethod
    def backward(ctx, g):
        if state.enabled:  # create_graph: a backward that can itself be differentiated (engine.ops.conv_double)
            from engine.ops.conv_double import conv2d_differentiable_backward

            x, w = ctx.saved_tensors
            grid = ctx.grid
            return (*conv2d_differentiable_backward(x, w, g, ctx.needs_input_grad[:3], grid.stride, grid.pads,
                                                    grid.dilation, ctx.groups), None, None, None, None)
        x, w = ctx.saved_tensors
        xp = x._device.xp
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        buf, grid, groups = ctx.buf, ctx.grid, ctx.groups
        o = w._data.shape[0]
        gd, wd = g._data, w._data
        if buf.dtype != gd.dtype:
            gd, wd = gd.astype(buf.dtype), wd.astype(buf.dtype)
        wt = wd.reshape(groups, o // groups, -1).transpose(0, 2, 1).reshape(-1, o // groups)  # per-group W^T
        gw = xp.zeros((wt.shape[0], o // groups), dtype=gd.dtype) if need_w else None
        gb = xp.zeros(o, dtype=gd.dtype) if need_b else None
        gx_buf = xp.zeros_like(buf) if need_x else None
        gx = xp.empty((grid.n, grid.c, *grid.hw), dtype=gd.dtype) if need_x else None
        cpu = x._device.type == "cpu"
        with _blas_threads(grid, o, groups, cpu):
            for block in grid.blocks(cpu):
                g_grid = grid.to_grid(xp, gd[block])  # (O, B*Ho*Wg)
                if need_w:
                    cols = grid.unfold(xp, buf, block)
                    if groups == 1:
                        gw += cols @ g_grid.T
                    else:
                        g_t = g_grid.reshape(groups, o // groups, -1).transpose(0, 2, 1)
                        gw += xp.matmul(cols.reshape(groups, -1, cols.shape[1]), g_t).reshape(gw.shape)
                if need_b:
                    gb += g_grid.sum(axis=1)
                if need_x:
                    grid.fold(xp, gx_buf, _gemm(xp, wt, g_grid, groups), block)
                    grid.crop(gx_buf, gx, block)
        grad_x = grad_w = grad_b = None
        if need_w:  # gw is (G * C/G*kh*kw, O/G): each group's (K, O/G) block, transposed to the weight's layout
            gw = gw.reshape(groups, -1, o // groups).transpose(0, 2, 1).reshape(w._data.shape)
            grad_w = _make(xp.ascontiguousarray(gw, dtype=w._dtype.np), w._dtype, w._device)
        if need_b:
            grad_b = _make(gb.astype(w._dtype.np, copy=False), w._dtype, w._device)
        if need_x:
            grad_x = _make(gx.astype(x._dtype.np, copy=False), x._dtype, x._device)
        return grad_x, grad_w, grad_b, None, None, None, None

    def _release_extra(self) -> None:
        self.buf = None



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
        if state.enabled:  # create_graph: a backward that can itself be differentiated (engine.ops.conv_double)
            from engine.ops.conv_double import conv_transpose2d_differentiable_backward

            x, w = ctx.saved_tensors
            canvas, stride, offset, dilation, groups = ctx.meta
            return (*conv_transpose2d_differentiable_backward(x, w, g, ctx.needs_input_grad[:3], stride, offset,
                                                              dilation, groups, canvas),
                    None, None, None, None, None)
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
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        input, weight, bias = autocast_state.cast_inputs("conv2d", input, weight, bias)
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
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        input, weight, bias = autocast_state.cast_inputs("conv_transpose2d", input, weight, bias)
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
