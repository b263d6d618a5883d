"""Spatial helpers: pad (constant / reflect / replicate / circular), interpolate (nearest, linear,
bilinear, trilinear), pixel_shuffle, unfold."""

from __future__ import annotations

import math
import warnings

from engine.autograd.function import Op
from engine.tensor import Tensor, _make, wrap


class ConstantPad(Op):
    """Pad with a constant; ``pads`` is ((before, after), ...) for every dim (negative crops)."""

    @staticmethod
    def forward(ctx, x, pads, value):
        xp = x._device.xp
        data = x._data
        shape = tuple(s + a + b for s, (a, b) in zip(data.shape, pads, strict=True))
        out = xp.full(shape, value, dtype=data.dtype)
        src = tuple(slice(max(-a, 0), s - max(-b, 0)) for s, (a, b) in zip(data.shape, pads, strict=True))
        dst = tuple(slice(max(a, 0), max(a, 0) + (sl.stop - sl.start)) for sl, (a, _) in zip(src, pads, strict=True))
        out[dst] = data[src]
        ctx.meta = (data.shape, pads)
        return out

    @staticmethod
    def backward(ctx, g):
        _, pads = ctx.meta
        return ConstantPad.apply(g, tuple((-a, -b) for a, b in pads), 0.0), None, None


def _pad_index(xp, size: int, before: int, after: int, mode: str):
    idx = xp.arange(-before, size + after)
    if mode == "reflect":
        if before >= size or after >= size:
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                               f"but got: padding ({before}, {after}) at dimension of input size {size}")
        period = 2 * (size - 1)
        idx = xp.abs(idx) % period if period else xp.zeros_like(idx)
        idx = xp.where(idx >= size, period - idx, idx)
    elif mode == "replicate":
        idx = xp.clip(idx, 0, size - 1)
    elif mode == "circular":
        idx = idx % size
    return idx


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims; ``pad`` lists (left, right) pairs from the last dim backwards."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    ndim = input._data.ndim
    if len(pad) // 2 > ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {ndim}")
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode == "constant":
        return ConstantPad.apply(input, tuple(pairs), 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unsupported padding mode: {mode}")
    out = input
    xp = input._device.xp
    for dim, (before, after) in enumerate(pairs):
        if before or after:
            idx = wrap(_pad_index(xp, input._data.shape[dim], before, after, mode), input._device)
            out = out.index_select(dim, idx)
    return out


def _output_size(input: Tensor, size, scale_factor, spatial: int) -> tuple:
    in_size = input._data.shape[2:]
    if size is not None:
        if scale_factor is not None:
            raise ValueError("only one of size or scale_factor should be defined")
        return tuple(size) if isinstance(size, list | tuple) else (size,) * spatial
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    scales = tuple(scale_factor) if isinstance(scale_factor, list | tuple) else (scale_factor,) * spatial
    return tuple(math.floor(s * f) for s, f in zip(in_size, scales, strict=True))


def _scales(input: Tensor, out_size, scale_factor, recompute: bool | None, spatial: int):
    """in/out ratios PyTorch uses for source coordinates (1/scale_factor when one was given)."""
    if scale_factor is not None and not recompute:
        factors = tuple(scale_factor) if isinstance(scale_factor, list | tuple) else (scale_factor,) * spatial
        return tuple(1.0 / f for f in factors)
    return tuple(i / o for i, o in zip(input._data.shape[2:], out_size, strict=True))


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, ...) input by nearest or (bi/tri)linear interpolation."""
    if antialias:
        raise NotImplementedError("interpolate(antialias=True) is not supported")
    spatial = input._data.ndim - 2
    if spatial < 1:
        raise ValueError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input._data.ndim}D)")
    linear_modes = {"linear": 1, "bilinear": 2, "trilinear": 3}
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif mode in linear_modes:
        if linear_modes[mode] != spatial:
            raise NotImplementedError(f"Got {input._data.ndim}D input, but {mode} mode needs "
                                      f"{linear_modes[mode] + 2}D input")
    else:
        raise NotImplementedError(f"interpolate mode {mode!r} is not supported")
    out_size = _output_size(input, size, scale_factor, spatial)
    if mode == "area":
        from engine.ops.pooling import adaptive_avg_pool1d, adaptive_avg_pool2d

        if spatial == 1:
            return adaptive_avg_pool1d(input, out_size)
        return adaptive_avg_pool2d(input, out_size)
    scales = _scales(input, out_size, scale_factor, recompute_scale_factor, spatial)
    xp = input._device.xp
    out = input
    for k, (n_in, n_out, scale) in enumerate(zip(input._data.shape[2:], out_size, scales, strict=True)):
        dim = 2 + k
        dst = xp.arange(n_out, dtype=xp.float64)
        if mode == "nearest":
            idx = xp.minimum(xp.floor(dst * scale).astype(xp.int64), n_in - 1)
            out = out.index_select(dim, wrap(idx, input._device))
            continue
        if mode == "nearest-exact":
            idx = xp.minimum(xp.floor((dst + 0.5) * scale).astype(xp.int64), n_in - 1)
            out = out.index_select(dim, wrap(idx, input._device))
            continue
        if align_corners:
            src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else dst * 0.0
        else:
            src = xp.maximum((dst + 0.5) * scale - 0.5, 0.0)
        i0 = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
        i1 = xp.minimum(i0 + 1, n_in - 1)
        lam = (src - i0).astype(input._dtype.np)
        shape = [1] * input._data.ndim
        shape[dim] = n_out
        lam_t = _make(lam.reshape(shape), input._dtype, input._device)
        lo = out.index_select(dim, wrap(i0, input._device))
        hi = out.index_select(dim, wrap(i1, input._device))
        out = lo + (hi - lo) * lam_t
    return out


def upsample(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    r = upscale_factor
    lead = input._data.shape[:-3]
    c, h, w = input._data.shape[-3:]
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    nd = len(lead)
    x = x.permute(*range(nd), nd, nd + 3, nd + 1, nd + 4, nd + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    r = downscale_factor
    lead = input._data.shape[:-3]
    c, h, w = input._data.shape[-3:]
    nd = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(nd), nd, nd + 2, nd + 4, nd + 1, nd + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col as an op: (N, C, H, W) -> (N, C*kh*kw, L), differentiable through a convolution identity."""
    from engine.ops.conv import _pair, conv2d

    kh, kw = _pair(kernel_size)
    c = input._data.shape[1]
    xp = input._device.xp
    eye = xp.eye(c * kh * kw, dtype=input._dtype.np).reshape(c * kh * kw, c, kh, kw)
    out = conv2d(input, _make(eye, input._dtype, input._device), None, stride, padding, dilation)
    return out.reshape(out._data.shape[0], c * kh * kw, -1)


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, the adjoint of ``unfold``: (N, C*kh*kw, L) -> (N, C, H, W), overlapping values summed."""
    from engine.ops.conv import _pair, conv_out_size, conv_transpose2d

    kh, kw = _pair(kernel_size)
    oh, ow = _pair(output_size)
    (dh, dw), (ph, pw), (sh, sw) = _pair(dilation), _pair(padding), _pair(stride)
    unbatched = input._data.ndim == 2
    if unbatched:
        input = input.unsqueeze(0)
    if input._data.ndim != 3:
        raise RuntimeError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
                           f"(got {input._data.ndim}D)")
    n, ckk, length = input._data.shape
    if ckk % (kh * kw):
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product of kernel_size, "
                           f"but got input.size(1)={ckk} and kernel_size=({kh}, {kw})")
    lh = conv_out_size(oh, kh, sh, 2 * ph, dh)
    lw = conv_out_size(ow, kw, sw, 2 * pw, dw)
    if lh < 1 or lw < 1 or lh * lw != length:
        raise RuntimeError(f"Given output_size=({oh}, {ow}), kernel_size=({kh}, {kw}), dilation=({dh}, {dw}), "
                           f"padding=({ph}, {pw}), stride=({sh}, {sw}), expected size of input's dimension 2 to "
                           f"match the calculated number of sliding blocks {lh} * {lw} = {lh * lw}, but got "
                           f"input.size(2)={length}.")
    c = ckk // (kh * kw)
    xp = input._device.xp
    eye = xp.eye(ckk, dtype=input._dtype.np).reshape(ckk, c, kh, kw)
    extra = (oh + 2 * ph - (dh * (kh - 1) + 1) - (lh - 1) * sh, ow + 2 * pw - (dw * (kw - 1) + 1) - (lw - 1) * sw)
    out = conv_transpose2d(input.reshape(n, ckk, lh, lw), _make(eye, input._dtype, input._device), None,
                           (sh, sw), (ph, pw), extra, 1, (dh, dw))
    return out.squeeze(0) if unbatched else out


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, g*k, *) -> (N, k*g, *): interleave the channels of ``groups`` groups."""
    shape = tuple(input._data.shape)
    if input._data.ndim < 3:
        raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"sizes {list(shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    if shape[1] % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {shape[1]} channels and "
                           f"{groups} groups.")
    x = input.reshape(shape[0], groups, shape[1] // groups, *shape[2:])
    return x.transpose(1, 2).reshape(*shape)


native_channel_shuffle = channel_shuffle


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated alias of ``interpolate(mode="nearest")`` (warns, as PyTorch does)."""
    warnings.warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated alias of ``interpolate(mode="bilinear", align_corners=True)`` (warns, as PyTorch does)."""
    warnings.warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
