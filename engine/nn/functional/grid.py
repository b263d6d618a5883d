"""Spatial transformers: affine_grid and grid_sample (bilinear/nearest/bicubic, zeros/border/reflection
padding), composed from differentiable tensor ops, so the gradient reaches both the input and the grid."""

from __future__ import annotations

import itertools
import warnings

from engine.ops.arithmetic import clamp, where
from engine.tensor import Tensor, wrap

_MODES = ("bilinear", "nearest", "bicubic")
_PADDING = ("zeros", "border", "reflection")


def _align(align_corners: bool | None) -> bool:
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                      "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                      "grid_sample for details.", stacklevel=3)
        return False
    return bool(align_corners)


def _base_coords(size: int, align_corners: bool, like: Tensor) -> Tensor:
    from engine.creation import linspace

    if size <= 1:
        from engine.creation import zeros

        return zeros(size, dtype=like.dtype, device=like.device)
    line = linspace(-1.0, 1.0, size, dtype=like.dtype, device=like.device)
    return line if align_corners else line * ((size - 1) / size)


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """Sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of theta (N, 2, 3) (or (N, 3, 4)) applied to the
    normalized [-1, 1] coordinates of an output of ``size`` (N, C, H, W) (or (N, C, D, H, W))."""
    from engine.creation import ones
    from engine.ops.shape import stack

    align = _align(align_corners)
    size = [int(v) for v in size]
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    n = len(size) - 2
    if n not in (2, 3):
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (n, n + 1):
        raise ValueError(f"Expected a batch of {n}D affine matrices of shape Nx{n}x{n + 1} for size {size}. "
                         f"Got {tuple(theta.shape)}.")
    if theta.shape[0] != size[0]:
        raise ValueError(f"Expected theta batch {theta.shape[0]} to match size batch {size[0]}")
    if min(size[2:]) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    if align and min(size[2:]) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", stacklevel=2)
    spatial = size[2:][::-1]  # x (W) first
    axes = [_base_coords(s, align, theta) for s in spatial]
    shape = size[2:]
    coords = []
    for d, axis in enumerate(axes):
        view = [1] * n
        view[n - 1 - d] = spatial[d]
        coords.append(axis.reshape(*view).expand(*shape))
    coords.append(ones(*shape, dtype=theta.dtype, device=theta.device))
    base = stack(coords, -1).reshape(1, -1, n + 1)
    grid = base @ theta.transpose(1, 2)
    return grid.reshape(size[0], *shape, n)


def _unnormalize(coord: Tensor, size: int, align: bool) -> Tensor:
    return (coord + 1) / 2 * (size - 1) if align else ((coord + 1) * size - 1) / 2


def _reflect(coord: Tensor, twice_low: int, twice_high: int) -> Tensor:
    if twice_low == twice_high:
        return coord * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    dist = (coord - low).abs()
    flips = wrap(coord._device.xp.floor(dist._data / span), coord._device)
    extra = dist - flips * span  # fmod for dist >= 0, with its gradient of 1
    return where(flips.remainder(2) == 0, extra + low, span - extra + low)


def _source_index(coord: Tensor, size: int, padding_mode: str, align: bool) -> Tensor:
    coord = _unnormalize(coord, size, align)
    if padding_mode == "border":
        coord = clamp(coord, 0, size - 1)
    elif padding_mode == "reflection":
        coord = _reflect(coord, 0, 2 * (size - 1)) if align else _reflect(coord, -1, 2 * size - 1)
        coord = clamp(coord, 0, size - 1)
    return coord


def _gather(flat: Tensor, sizes, corner, padding_mode: str) -> Tensor:
    """Values of ``flat`` (N, C, prod(sizes)) at integer corners (each (N, P) arrays, x first); zero outside."""
    xp = flat._device.xp
    n = len(sizes)
    ok = None
    pos = 0
    stride = 1
    for d in range(n):  # corner[d] indexes spatial dim n-1-d (x -> W)
        size = sizes[n - 1 - d]
        c = corner[d]
        inside = (c >= 0) & (c < size)
        ok = inside if ok is None else ok & inside
        pos = pos + xp.clip(c, 0, size - 1) * stride
        stride *= size
    index = wrap(xp.broadcast_to(pos[:, None, :], (flat.shape[0], flat.shape[1], pos.shape[-1])).astype(xp.int64),
                 flat._device)
    values = flat.gather(2, index)
    mask = wrap(ok[:, None, :].astype(flat._data.dtype), flat._device)
    return values * mask


def _cubic_weights(t: Tensor) -> list[Tensor]:
    a = -0.75  # NOTE: PyTorch's bicubic uses the Keys kernel with A = -0.75

    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """Sample (N, C, H_in, W_in) at the grid's (N, H_out, W_out, 2) normalized (x, y) locations (or 5-D
    input with a (N, D, H, W, 3) grid; ``bicubic`` is 2-D only), as ``torch.nn.functional.grid_sample``."""
    if mode not in _MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in _PADDING:
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    n = input.dim() - 2
    if n not in (2, 3) or grid.dim() != input.dim() or grid.shape[-1] != n or grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"grid_sample(): expected a 4-D or 5-D input and a grid of the same rank ending in "
                           f"its spatial rank with the same batch, got input {tuple(input.shape)} and grid "
                           f"{tuple(grid.shape)}")
    if mode == "bicubic" and n != 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    align = _align(align_corners)
    batch, channels = input.shape[:2]
    sizes = tuple(int(v) for v in input.shape[2:])
    out_shape = tuple(grid.shape[1:-1])
    flat = input.reshape(batch, channels, -1)
    g = grid.reshape(batch, -1, n)
    xp = input._device.xp
    if mode == "bicubic":
        return _bicubic(flat, g, sizes, padding_mode, align).reshape(batch, channels, *out_shape)
    coords = [_source_index(g[..., d], sizes[n - 1 - d], padding_mode, align) for d in range(n)]
    if mode == "nearest":
        corner = [xp.rint(c._data).astype(xp.int64) for c in coords]
        return _gather(flat, sizes, corner, padding_mode).reshape(batch, channels, *out_shape)
    low = [xp.floor(c._data).astype(xp.int64) for c in coords]
    frac = [c - wrap(lo.astype(c._data.dtype), c._device) for c, lo in zip(coords, low, strict=True)]
    out = None
    for bits in itertools.product((0, 1), repeat=n):
        weight = None
        for d, bit in enumerate(bits):
            w = frac[d] if bit else 1 - frac[d]
            weight = w if weight is None else weight * w
        term = _gather(flat, sizes, [lo + bit for lo, bit in zip(low, bits, strict=True)], padding_mode)
        term = term * weight.unsqueeze(1)
        out = term if out is None else out + term
    return out.reshape(batch, channels, *out_shape)


def _bicubic(flat: Tensor, g: Tensor, sizes, padding_mode: str, align: bool) -> Tensor:
    """4x4 Keys-kernel interpolation; each tap's coordinate is padded on its own (as PyTorch does)."""
    xp = flat._device.xp
    h, w = sizes
    x = _unnormalize(g[..., 0], w, align)
    y = _unnormalize(g[..., 1], h, align)
    x0, y0 = xp.floor(x._data).astype(xp.int64), xp.floor(y._data).astype(xp.int64)
    wx = _cubic_weights(x - wrap(x0.astype(x._data.dtype), x._device))
    wy = _cubic_weights(y - wrap(y0.astype(y._data.dtype), y._device))
    out = None
    for i in range(4):
        for j in range(4):
            cx, cy = _tap(x0 + j - 1, w, padding_mode, align, xp), _tap(y0 + i - 1, h, padding_mode, align, xp)
            term = _gather(flat, sizes, [cx, cy], padding_mode) * (wx[j] * wy[i]).unsqueeze(1)
            out = term if out is None else out + term
    return out


def _tap(index, size: int, padding_mode: str, align: bool, xp):
    if padding_mode == "zeros":
        return index
    coord = index.astype(xp.float64)
    if padding_mode == "reflection":
        low, high = (0, 2 * (size - 1)) if align else (-1, 2 * size - 1)
        if low == high:
            coord = coord * 0
        else:
            lo, span = low / 2, (high - low) / 2
            dist = xp.abs(coord - lo)
            extra, flips = xp.fmod(dist, span), xp.floor(dist / span)
            coord = xp.where(flips % 2 == 0, extra + lo, span - extra + lo)
    return xp.clip(coord, 0, size - 1).astype(xp.int64)


__all__ = ["affine_grid", "grid_sample"]
