"""Pooling built on the pooling ops: lp_pool1d/2d, adaptive_max_pool1d, max_unpool1d/2d, ``*_with_indices``."""

from __future__ import annotations

from engine.nn.functional.activation import relu
from engine.nn.functional.window_max import adaptive_max_pool_nd_with_indices, max_pool_nd_with_indices
from engine.ops import pooling as _pool
from engine.tensor import Tensor, wrap


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """(sum over each window of x^p)^(1/p), as PyTorch computes it (through an average pool)."""
    kw, kh = _pool._pair(kernel_size)
    out = _pool.avg_pool2d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * relu(out.abs())).mul(kw * kh).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """1-d power-average pooling over (N, C, L)."""
    out = _pool.avg_pool1d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * relu(out.abs())).mul(_pool._single(kernel_size)).pow(1.0 / norm_type)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling of (N, C, H, W) or (C, H, W) to a fixed (H_out, W_out) (None keeps that size); with
    ``return_indices`` also the flat H*W position of each maximum (the first one on ties)."""
    if input.dim() not in (3, 4):
        raise RuntimeError(f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got {tuple(input.shape)}")
    out = _pool._pair(output_size)
    h, w = input.shape[-2:]
    oh = h if out[0] is None else int(out[0])
    ow = w if out[1] is None else int(out[1])
    values = _pool.adaptive_max_pool2d(input, (oh, ow))
    if not return_indices:
        return values
    xp = input._device.xp
    data = input._data
    rows = []
    for i in range(oh):
        r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        cells = []
        for j in range(ow):
            c0, c1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            window = data[..., r0:r1, c0:c1].reshape(*data.shape[:-2], -1)
            arg = window.argmax(axis=-1)
            cells.append((r0 + arg // (c1 - c0)) * w + c0 + arg % (c1 - c0))
        rows.append(xp.stack(cells, axis=-1))
    return values, wrap(xp.stack(rows, axis=-2).astype(xp.int64), input._device)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max pooling of (N, C, L) or (C, L) to a fixed length (with ``return_indices``, also the argmax)."""
    if input.dim() not in (2, 3):
        raise RuntimeError(f"adaptive_max_pool1d(): Expected 2D or 3D tensor, but got {tuple(input.shape)}")
    out = adaptive_max_pool2d(input.unsqueeze(-2), (1, _pool._single(output_size)), return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    return adaptive_max_pool1d(input, output_size, True)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                            return_indices: bool = True):
    return _pool.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                            return_indices: bool = True):
    return _pool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _ntuple(value, n: int) -> tuple:
    return (int(value),) * n if isinstance(value, int) else tuple(int(v) for v in value)


def _unpool_output_size(input: Tensor, kernel, stride, padding, output_size) -> tuple:
    n = len(kernel)
    default = tuple((input.shape[-n + d] - 1) * stride[d] + kernel[d] - 2 * padding[d] for d in range(n))
    if output_size is None:
        size = default
    else:
        size = tuple(int(v) for v in output_size)
        if len(size) == n + 2:
            size = size[2:]
        if len(size) != n:
            raise ValueError(f"output_size should be a sequence containing {n} or {n + 2} elements, but it has a "
                             f"length of '{len(size)}'")
        for d in range(n):
            low, high = default[d] - stride[d], default[d] + stride[d]
            if not low < size[d] < high:
                raise ValueError(f'invalid output_size "{list(size)}" (dim {d} must be between {low} and {high})')
    for d, v in enumerate(size):
        if v < 0:
            raise ValueError(f"max_unpooling: output_size must contain non-negative spatial dimensions, but got "
                             f"output_size[{d}]={v}")
    return size


def _max_unpool(input: Tensor, indices: Tensor, kernel_size, stride, padding, output_size, n: int) -> Tensor:
    from engine.creation import zeros

    kernel = _ntuple(kernel_size, n)
    stride = kernel if stride is None else _ntuple(stride, n)
    padding = _ntuple(padding, n)
    if input.dim() not in (n + 1, n + 2):
        raise RuntimeError(f"max_unpool{n}d: expected a {n + 1}D or {n + 2}D input, got {input.dim()}D")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({tuple(input.shape)}) but got indices tensor with shape: {tuple(indices.shape)}")
    if indices._dtype.is_floating_point:
        raise RuntimeError(f"elements in indices should be type int64 but got: {indices._dtype}")
    size = _unpool_output_size(input, kernel, stride, padding, output_size)
    lead = tuple(input.shape[:-n])
    flat = 1
    for v in size:
        flat *= v
    if indices.numel() and (int(indices._data.min()) < 0 or int(indices._data.max()) >= flat):
        raise RuntimeError(f"Found an invalid max index: {int(indices._data.max())} (output volumes are of size "
                           f"{'x'.join(str(v) for v in size)}")
    out = zeros(*lead, flat, dtype=input.dtype, device=input.device)
    out = out.scatter(-1, indices.reshape(*lead, -1), input.reshape(*lead, -1))
    return out.reshape(*lead, *size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of ``max_pool1d``: each value goes back to the position its index names, zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of ``max_pool2d``: each value goes back to the position its index names, zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    """Partial inverse of ``max_pool3d``: each value goes back to the position its index names, zeros elsewhere."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


def _separable3d(input: Tensor, name: str, plane, depth) -> Tensor:
    """Pool (N, C, D, H, W) or (C, D, H, W) as a 2-d pooling of every depth slice, then a 1-d pooling of
    depth: max and average pooling over a box factor into the two (padding, ceil_mode and count_include_pad
    are per-dim), so no 3-d kernel is needed."""
    if input.dim() not in (4, 5):
        raise RuntimeError(f"{name}: Expected 4D or 5D tensor for input, but got {tuple(input.shape)}")
    if input.dim() == 4:
        return _separable3d(input.unsqueeze(0), name, plane, depth).squeeze(0)
    n, c, d, h, w = input.shape
    y = plane(input.reshape(n * c * d, 1, h, w))
    h2, w2 = y.shape[-2:]
    y = y.reshape(n * c, d, h2 * w2).transpose(1, 2).reshape(n * c * h2 * w2, 1, d)
    y = depth(y)
    d2 = y.shape[-1]
    return y.reshape(n * c, h2 * w2, d2).transpose(1, 2).reshape(n, c, d2, h2, w2)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """3-d max pooling of (N, C, D, H, W)."""
    k = _ntuple(kernel_size, 3)
    s = k if stride is None or stride == [] or stride == () else _ntuple(stride, 3)
    p, dl = _ntuple(padding, 3), _ntuple(dilation, 3)
    if return_indices:
        if input.dim() not in (4, 5):
            raise RuntimeError(f"max_pool3d: Expected 4D or 5D tensor for input, but got {tuple(input.shape)}")
        return max_pool_nd_with_indices(input, k, s, p, dl, ceil_mode, 3)
    return _separable3d(
        input, "max_pool3d",
        lambda t: _pool.max_pool2d(t, k[1:], s[1:], p[1:], dl[1:], ceil_mode),
        lambda t: _pool.max_pool1d(t, k[0], s[0], p[0], dl[0], ceil_mode))


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """3-d average pooling of (N, C, D, H, W)."""
    k = _ntuple(kernel_size, 3)
    s = k if stride is None or stride == [] or stride == () else _ntuple(stride, 3)
    p = _ntuple(padding, 3)
    if divisor_override is not None:
        if divisor_override == 0:
            raise RuntimeError("divisor must be not zero")
        total = _separable3d(
            input, "avg_pool3d",
            lambda t: _pool.avg_pool2d(t, k[1:], s[1:], p[1:], ceil_mode, True, 1),
            lambda t: _pool.avg_pool2d(t.unsqueeze(2), (1, k[0]), (1, s[0]), (0, p[0]), ceil_mode, True,
                                       1).squeeze(2))
        return total / divisor_override
    return _separable3d(
        input, "avg_pool3d",
        lambda t: _pool.avg_pool2d(t, k[1:], s[1:], p[1:], ceil_mode, count_include_pad),
        lambda t: _pool.avg_pool1d(t, k[0], s[0], p[0], ceil_mode, count_include_pad))


def _adaptive3(input: Tensor, output_size) -> tuple:
    out = _ntuple(output_size, 3) if not isinstance(output_size, list | tuple) else tuple(output_size)
    if len(out) != 3:
        raise ValueError(f"adaptive pool 3d: output_size must be an int or 3 values, got {output_size}")
    return tuple(int(input.shape[-3 + i]) if v is None else int(v) for i, v in enumerate(out))


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, D, H, W) to a fixed (D_out, H_out, W_out) (None keeps that size)."""
    od, oh, ow = _adaptive3(input, output_size)
    return _separable3d(input, "adaptive_avg_pool3d", lambda t: _pool.adaptive_avg_pool2d(t, (oh, ow)),
                        lambda t: _pool.adaptive_avg_pool1d(t, od))


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """Max pooling of (N, C, D, H, W) to a fixed (D_out, H_out, W_out) (None keeps that size)."""
    od, oh, ow = _adaptive3(input, output_size)
    if return_indices:
        if input.dim() not in (4, 5):
            raise RuntimeError(f"adaptive_max_pool3d(): Expected 4D or 5D tensor, but got {tuple(input.shape)}")
        return adaptive_max_pool_nd_with_indices(input, (od, oh, ow), 3)
    return _separable3d(input, "adaptive_max_pool3d", lambda t: _pool.adaptive_max_pool2d(t, (oh, ow)),
                        lambda t: adaptive_max_pool1d(t, od))


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                            return_indices: bool = False):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    return adaptive_max_pool3d(input, output_size, True)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """3-d power-average pooling (sum over each window of x^p)^(1/p)."""
    kd, kh, kw = _ntuple(kernel_size, 3)
    out = avg_pool3d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * relu(out.abs())).mul(kd * kh * kw).pow(1.0 / norm_type)


__all__ = ["adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d",
           "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d", "adaptive_max_pool3d_with_indices", "avg_pool3d", "lp_pool1d",
           "lp_pool2d", "lp_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d", "max_pool3d_with_indices",
           "max_unpool1d", "max_unpool2d", "max_unpool3d"]
