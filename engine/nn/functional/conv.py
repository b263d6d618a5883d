"""3-d convolutions built on the 2-d convolution ops: conv3d and conv_transpose3d (and conv_tbc on conv1d).

A 3-d kernel is a sum over its depth taps of 2-d kernels, so each tap is one batched conv2d (or
conv_transpose2d) over all depth slices at once; autograd, autocast and the GPU path come from the 2-d ops.
"""

from __future__ import annotations

from engine.creation import zeros
from engine.nn.functional.vision import pad
from engine.ops.conv import _same_pads, conv2d, conv_transpose2d
from engine.ops.shape import cat
from engine.tensor import Tensor


def _triple(value) -> tuple:
    if isinstance(value, int):
        return (value,) * 3
    value = tuple(int(v) for v in value)
    return value * 3 if len(value) == 1 else value


def _check(input: Tensor, weight: Tensor, groups: int, transposed: bool, name: str) -> None:
    if input.dim() not in (4, 5):
        raise RuntimeError(f"Expected 4D (unbatched) or 5D (batched) input to {name}, but got input of size: "
                           f"{list(input.shape)}")
    if weight.dim() != 5:
        raise RuntimeError(f"{name}: expected a 5D weight, got weight of size {list(weight.shape)}")
    channels = input.shape[-4]
    expected = weight.shape[0] if transposed else weight.shape[1] * groups
    if channels != expected:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {expected} channels, but got {channels} channels instead")


def conv3d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """3-d convolution over (N, C, D, H, W) (or unbatched (C, D, H, W)) input."""
    _check(input, weight, groups, False, "conv3d")
    if input.dim() == 4:
        return conv3d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups).squeeze(0)
    stride, dilation = _triple(stride), _triple(dilation)
    kd, kh, kw = weight.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0,) * 6
        elif padding == "same":
            if stride != (1, 1, 1):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            pads = _same_pads((kd, kh, kw), dilation)
        else:
            raise RuntimeError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
    else:
        pd, ph, pw = _triple(padding)
        pads = (pd, pd, ph, ph, pw, pw)
    if any(pads):
        input = pad(input, (pads[4], pads[5], pads[2], pads[3], pads[0], pads[1]))
    n, c, d, h, w = input.shape
    (sd, sh, sw), (dd, dh, dw) = stride, dilation
    out_d = (d - dd * (kd - 1) - 1) // sd + 1
    if out_d < 1:
        raise RuntimeError(f"Calculated output depth is {out_d}: the (padded) input depth {d} is smaller than the "
                           f"dilated kernel depth {dd * (kd - 1) + 1}")
    total = None
    for tap in range(kd):
        start = tap * dd
        xs = input[:, :, start:start + (out_d - 1) * sd + 1:sd]
        xs = xs.permute(0, 2, 1, 3, 4).reshape(n * out_d, c, h, w)
        y = conv2d(xs, weight[:, :, tap], None, (sh, sw), 0, (dh, dw), groups)
        total = y if total is None else total + y
    assert total is not None
    o, h2, w2 = total.shape[1:]
    out = total.reshape(n, out_d, o, h2, w2).permute(0, 2, 1, 3, 4)
    if bias is not None:
        out = out + bias.reshape(1, o, 1, 1, 1)
    return out


def conv_transpose3d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-d convolution (the gradient of conv3d with respect to its input)."""
    _check(input, weight, groups, True, "conv_transpose3d")
    if input.dim() == 4:
        return conv_transpose3d(input.unsqueeze(0), weight, bias, stride, padding, output_padding, groups,
                                dilation).squeeze(0)
    stride, padding, dilation = _triple(stride), _triple(padding), _triple(dilation)
    output_padding = _triple(output_padding)
    for op, s, dl in zip(output_padding, stride, dilation, strict=True):
        if op >= s and op >= dl:
            raise RuntimeError("output padding must be smaller than either stride or dilation")
    n, c, d, h, w = input.shape
    kd = weight.shape[2]
    (sd, sh, sw), (pd, ph, pw), (dd, dh, dw) = stride, padding, dilation
    full_d = (d - 1) * sd + dd * (kd - 1) + 1 + output_padding[0]
    out_d = full_d - 2 * pd
    if out_d < 1:
        raise RuntimeError(f"conv_transpose3d: calculated output depth {out_d} is not positive")
    span = (d - 1) * sd + 1
    xs = input.permute(0, 2, 1, 3, 4).reshape(n * d, c, h, w)
    total = None
    for tap in range(kd):
        y = conv_transpose2d(xs, weight[:, :, tap], None, (sh, sw), (ph, pw), output_padding[1:], groups,
                             (dh, dw))
        o, h2, w2 = y.shape[1:]
        y = y.reshape(n, d, o, h2, w2)
        if sd > 1:  # put the slices sd apart along depth
            gap = zeros(n, d, sd - 1, o, h2, w2, dtype=y.dtype, device=y.device)
            y = cat([y.unsqueeze(2), gap], 2).reshape(n, d * sd, o, h2, w2)[:, :span]
        before = tap * dd
        y = pad(y, (0, 0, 0, 0, 0, 0, before, full_d - before - span))
        total = y if total is None else total + y
    assert total is not None
    out = total[:, pd:pd + out_d].permute(0, 2, 1, 3, 4)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:
    """1-d convolution of a (time, batch, in_channels) sequence with a (kernel, in_channels, out_channels)
    filter, returning (time_out, batch, out_channels): conv1d with the axes moved."""
    from engine.ops.conv import conv1d

    if input.dim() != 3:
        raise RuntimeError("conv_tbc: Input must have 3 dims: time, batch, in_channel")
    if weight.dim() != 3:
        raise RuntimeError("conv_tbc: Weight tensor must have 3 dims: kernel_width, in_channels, out_channels.")
    if bias.dim() != 1:
        raise RuntimeError("conv_tbc: Bias must be 1-D")
    if input.shape[2] != weight.shape[1]:
        raise RuntimeError("conv_tbc: Input dim 2 (input channels) is not == dim 1 in the weight tensor")
    if weight.shape[2] != bias.shape[0]:
        raise RuntimeError("conv_tbc: Bias size must equal dim 2 in the weight tensor (output channels).")
    out = conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, padding=int(pad))
    return out.permute(2, 0, 1)


__all__ = ["conv3d", "conv_tbc", "conv_transpose3d"]
