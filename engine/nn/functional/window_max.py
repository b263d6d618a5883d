"""Max pooling over explicit windows, with indices: max_pool3d / adaptive_max_pool3d ``return_indices`` and
fractional_max_pool2d/3d. Each output cell names its window as flat positions in the input plane; the
winner (the first maximum, NaN wins as in PyTorch) is picked on the data and gathered, so the gradient
flows to that one element, as PyTorch's max-pool backward scatters it."""

from __future__ import annotations

import itertools

import numpy as np

from engine.tensor import Tensor, wrap


def _window_max(input: Tensor, n: int, windows: np.ndarray):
    """``windows``: int array (planes or 1, *out, K) of flat positions into the last ``n`` dims (-1 = none)."""
    lead = tuple(input.shape[:-n])
    xp = input._device.xp
    flat = input.reshape(*lead, -1)
    planes = int(np.prod(lead)) if lead else 1
    out_shape = windows.shape[1:-1]
    win = np.broadcast_to(windows, (planes, *windows.shape[1:])).reshape(planes, -1, windows.shape[-1])
    data = flat._data.reshape(planes, -1)
    idx = xp.asarray(np.where(win < 0, 0, win))
    vals = xp.take_along_axis(data, idx.reshape(planes, -1), axis=1).reshape(idx.shape)
    vals = xp.where(xp.asarray(win < 0), -xp.inf, vals)
    best = xp.take_along_axis(idx, vals.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    chosen = wrap(best.reshape(*lead, -1).astype(xp.int64), input._device)
    values = flat.gather(-1, chosen).reshape(*lead, *out_shape)
    return values, chosen.reshape(*lead, *out_shape)


def _boxes(sizes, starts_per_dim, lengths_per_dim, dilation=None) -> np.ndarray:
    """Windows (1 or planes, *out, K) from per-dim start/length arrays (each (planes or 1, out_d)), taps
    ``dilation`` apart; ragged windows and taps outside the input are -1."""
    n = len(sizes)
    planes = max(s.shape[0] for s in starts_per_dim)
    outs = tuple(s.shape[1] for s in starts_per_dim)
    k = [int(np.max(length)) for length in lengths_per_dim]
    strides = [int(np.prod(sizes[d + 1:])) for d in range(n)]
    result = np.full((planes, *outs, int(np.prod(k))), -1, dtype=np.int64)
    for j, offs in enumerate(itertools.product(*(range(v) for v in k))):
        pos = np.zeros((planes, *outs), dtype=np.int64)
        ok = np.ones((planes, *outs), dtype=bool)
        for d in range(n):
            shape = [planes if starts_per_dim[d].shape[0] > 1 else 1] + [1] * n
            shape[1 + d] = outs[d]
            coord = starts_per_dim[d].reshape(shape) + offs[d] * (1 if dilation is None else dilation[d])
            length = lengths_per_dim[d]
            length = length.reshape([length.shape[0] if length.shape[0] > 1 else 1, *shape[1:]])
            inside = (offs[d] < length) & (coord >= 0) & (coord < sizes[d])
            ok &= np.broadcast_to(inside, ok.shape)
            pos = pos + np.broadcast_to(coord * strides[d], pos.shape)
        result[..., j] = np.where(ok, pos, -1)
    return result


def max_pool_nd_with_indices(input: Tensor, kernel, stride, padding, dilation, ceil_mode: bool, n: int):
    """max pooling with PyTorch's output-size rule (ceil_mode drops a window starting in the right padding)."""
    sizes = tuple(int(v) for v in input.shape[-n:])
    starts, lengths = [], []
    for d in range(n):
        span = sizes[d] + 2 * padding[d] - dilation[d] * (kernel[d] - 1) - 1
        if span < 0:
            raise RuntimeError(f"max_pool{n}d: output size is too small for input {tuple(input.shape)}")
        out = (span + (stride[d] - 1 if ceil_mode else 0)) // stride[d] + 1
        if ceil_mode and (out - 1) * stride[d] >= sizes[d] + padding[d]:
            out -= 1
        first = np.arange(out) * stride[d] - padding[d]
        starts.append(first[None, :])
        lengths.append(np.full((1, out), kernel[d]))
    return _window_max(input, n, _boxes(sizes, starts, lengths, dilation))


def adaptive_max_pool_nd_with_indices(input: Tensor, output_size: tuple, n: int):
    sizes = tuple(int(v) for v in input.shape[-n:])
    starts, lengths = [], []
    for d in range(n):
        i = np.arange(output_size[d])
        lo, hi = (i * sizes[d]) // output_size[d], -(-((i + 1) * sizes[d]) // output_size[d])
        starts.append(lo[None, :])
        lengths.append((hi - lo)[None, :])
    return _window_max(input, n, _boxes(sizes, starts, lengths))


def _intervals(sample: np.ndarray, size: int, out: int, pool: int) -> np.ndarray:
    """PyTorch's fractional-pool window starts for each plane's sample u in [0, 1) (computed in its dtype)."""
    seq = np.zeros((sample.shape[0], out), dtype=np.int64)
    if out > 1:
        alpha = sample.dtype.type(size - pool) / sample.dtype.type(out - 1)
        i = np.arange(out - 1, dtype=sample.dtype)
        seq[:, :-1] = ((i[None, :] + sample[:, None]) * alpha).astype(np.int64) - (sample * alpha).astype(
            np.int64)[:, None]
    if out > 0:
        seq[:, -1] = size - pool
    return seq


def _fractional(input: Tensor, kernel_size, output_size, output_ratio, return_indices, samples, n: int):
    name = f"fractional_max_pool{n}d"
    if input.dim() not in (n + 1, n + 2):
        raise RuntimeError(f"{name}(): Expected {n + 1}D or {n + 2}D tensor, but got: {tuple(input.shape)}")
    if input.dim() == n + 1:
        out = _fractional(input.unsqueeze(0), kernel_size, output_size, output_ratio, True,
                          None if samples is None else samples, n)
        return (out[0].squeeze(0), out[1].squeeze(0)) if return_indices else out[0].squeeze(0)
    kernel = (int(kernel_size),) * n if isinstance(kernel_size, int) else tuple(int(v) for v in kernel_size)
    sizes = tuple(int(v) for v in input.shape[-n:])
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output_size or an output_ratio")
        ratio = (float(output_ratio),) * n if isinstance(output_ratio, int | float) else tuple(output_ratio)
        output_size = [int(sizes[d] * float(ratio[d])) for d in range(n)]
    outs = (int(output_size),) * n if isinstance(output_size, int) else tuple(int(v) for v in output_size)
    for d in range(n):
        if outs[d] + kernel[d] - 1 > sizes[d]:
            raise RuntimeError(f"{name}(): pool size {kernel[d]} and output size {outs[d]} are too large for "
                               f"input size {sizes[d]}")
    batch, channels = int(input.shape[0]), int(input.shape[1])
    if samples is None:
        from engine.creation import rand

        samples = rand(batch, channels, n, dtype=input.dtype, device=input.device)
    if tuple(samples.shape) != (batch, channels, n):
        raise RuntimeError(f"{name}(): expected _random_samples of shape {(batch, channels, n)}, got "
                           f"{tuple(samples.shape)}")
    u = np.asarray(samples.detach().cpu().numpy() if hasattr(samples, "cpu") else samples).reshape(-1, n)
    # NOTE: PyTorch's 2-d pool reads sample[0] for width and sample[1] for height; the 3-d pool reads T, H, W.
    order = (1, 0) if n == 2 else (0, 1, 2)
    starts = [_intervals(u[:, order[d]], sizes[d], outs[d], kernel[d]) for d in range(n)]
    lengths = [np.full((1, outs[d]), kernel[d]) for d in range(n)]
    values, indices = _window_max(input, n, _boxes(sizes, starts, lengths))
    return (values, indices) if return_indices else values


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    """Fractional max pooling of (N, C, H, W) (Graham, 2014); ``_random_samples`` (N, C, 2) fixes the windows."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 2)


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples=None):
    return _fractional(input, kernel_size, output_size, output_ratio, True, _random_samples, 2)


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    """Fractional max pooling of (N, C, T, H, W); ``_random_samples`` (N, C, 3) fixes the windows."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 3)


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = False, _random_samples=None):
    return _fractional(input, kernel_size, output_size, output_ratio, True, _random_samples, 3)


__all__ = ["adaptive_max_pool_nd_with_indices", "fractional_max_pool2d", "fractional_max_pool2d_with_indices",
           "fractional_max_pool3d", "fractional_max_pool3d_with_indices", "max_pool_nd_with_indices"]
