"""Counting and searching (no gradients): bucketize, searchsorted, histc, histogram, bincount, unique,
unique_consecutive, unravel_index."""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from engine import backend
from engine.dtypes import FLOAT, INT, int32, int64
from engine.tensor import Tensor, wrap

HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])


def _index_dtype(out_int32: bool):
    return int32 if out_int32 else int64


def _as_tensor(value, like: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value
    from engine.creation import tensor

    return tensor(value, dtype=like._dtype, device=like._device)


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None, out=None):
    """Indices at which ``input`` would be inserted into ``sorted_sequence`` (along its last dim) to keep
    it sorted; ``right``/``side="right"`` places equal values after the existing ones."""
    if out is not None:
        raise TypeError("searchsorted(): out= is not supported by the engine; assign the result instead")
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    values = _as_tensor(input, sorted_sequence)
    xp = sorted_sequence._device.xp
    seq = sorted_sequence._data
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter._data, axis=-1)
    which = "right" if right else "left"
    dtype = _index_dtype(out_int32).np
    if seq.ndim == 1:
        found = xp.searchsorted(seq, values._data, side=which)
        return wrap(xp.asarray(found).astype(dtype), sorted_sequence._device)
    if seq.shape[:-1] != values._data.shape[:-1]:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions"
                           " of boundaries tensor and input value tensor must match")
    rows = seq.reshape(-1, seq.shape[-1])
    queries = values._data.reshape(rows.shape[0], -1)
    found = xp.stack([xp.searchsorted(r, q, side=which) for r, q in zip(rows, queries, strict=True)])
    return wrap(found.reshape(values._data.shape).astype(dtype), sorted_sequence._device)


def bucketize(input, boundaries, *, out_int32=False, right=False, out=None):
    """The bucket of each element: ``boundaries[i-1] < x <= boundaries[i]`` (``<`` and ``<=`` swap when
    ``right``)."""
    if boundaries._data.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries._data.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right, out=out)


def histc(input, bins: int = 100, min=0, max=0, *, out=None):
    """A histogram of ``bins`` equal bins over [min, max] (the data's range when both are 0); elements
    outside are ignored."""
    if out is not None:
        raise TypeError("histc(): out= is not supported by the engine; assign the result instead")
    if input._dtype.category != FLOAT:
        raise RuntimeError(f'"histogram_cpu" not implemented for \'{input._dtype.name.capitalize()}\'')
    if bins <= 0:
        raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins} for bins")
    xp = input._device.xp
    data = input._data.reshape(-1).astype(np.float64)
    low, high = float(min), float(max)
    if low == high and data.size:
        low, high = float(data.min()), float(data.max())
    if low > high:
        raise RuntimeError(f"torch.histc: max must be larger than min, but got min {low} max {high}")
    if low == high:
        low, high = low - 1, high + 1
    inside = data[(data >= low) & (data <= high)]
    position = ((inside - low) * bins / (high - low)).astype(np.int64)
    position = xp.minimum(position, bins - 1)  # NOTE: ``max`` itself belongs to the last bin
    counts = xp.bincount(position, minlength=bins)
    return wrap(counts.astype(input._dtype.np), input._device)


def histogram(input, bins=100, *, range=None, weight=None, density=False, out=None):
    """``(hist, bin_edges)``: NumPy's histogram with ``bins`` equal bins (or the given edges)."""
    if out is not None:
        raise TypeError("histogram(): out= is not supported by the engine; assign the result instead")
    if input._dtype.category != FLOAT:
        raise RuntimeError(f'torch.histogram: input tensor and bins tensors should have the same dtype, but got '
                           f'input {input._dtype.name}')
    data = backend.to_numpy(input._data).reshape(-1)
    edges = backend.to_numpy(bins._data) if isinstance(bins, Tensor) else bins
    weights = None if weight is None else backend.to_numpy(weight._data).reshape(-1)
    hist, bin_edges = np.histogram(data.reshape(-1), bins=edges, range=range, weights=weights, density=density)
    dtype = input._dtype.np
    xp = input._device.xp
    return HistogramResult(wrap(xp.asarray(hist.astype(dtype)), input._device),
                           wrap(xp.asarray(bin_edges.astype(dtype)), input._device))


def bincount(input, weights=None, minlength: int = 0):
    """The count of each non-negative integer in a 1-d tensor (summed ``weights`` when given)."""
    if input._data.ndim != 1 or input._dtype.category != INT:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if input._data.size and int(input._data.min()) < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    xp = input._device.xp
    if weights is None:
        return wrap(xp.bincount(input._data, minlength=minlength).astype(int64.np), input._device)
    dtype = weights._dtype.np if weights._dtype.category == FLOAT else np.float64
    counts = xp.bincount(input._data, weights=weights._data.astype(np.float64), minlength=minlength)
    return wrap(counts.astype(dtype), input._device)


def _unique_result(values, inverse, counts, input, return_inverse: bool, return_counts: bool):
    device = input._device
    out = [wrap(values, device)]
    if return_inverse:
        out.append(wrap(inverse.astype(int64.np), device))
    if return_counts:
        out.append(wrap(counts.astype(int64.np), device))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct elements (or slices along ``dim``), sorted; optionally the inverse map and counts."""
    xp = input._device.xp
    if dim is None:
        values, inverse, counts = xp.unique(input._data.reshape(-1), return_inverse=True, return_counts=True)
        return _unique_result(values, inverse.reshape(input._data.shape), counts, input, return_inverse,
                              return_counts)
    axis = dim % builtins.max(input._data.ndim, 1)
    values, inverse, counts = np.unique(backend.to_numpy(input._data), return_inverse=True, return_counts=True, axis=axis)
    return _unique_result(xp.asarray(values), xp.asarray(inverse.reshape(-1)), xp.asarray(counts), input,
                          return_inverse, return_counts)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Collapse runs of equal consecutive elements (or slices along ``dim``) to one."""
    xp = input._device.xp
    if dim is None:
        data = input._data.reshape(-1)
        starts = xp.ones(data.shape[0], dtype=bool)
        if data.shape[0]:
            starts[1:] = data[1:] != data[:-1]
        values = data[starts]
        shape = input._data.shape
    else:
        axis = dim % builtins.max(input._data.ndim, 1)
        moved = xp.moveaxis(input._data, axis, 0)
        starts = xp.ones(moved.shape[0], dtype=bool)
        if moved.shape[0] > 1:
            flat = moved.reshape(moved.shape[0], -1)
            starts[1:] = (flat[1:] != flat[:-1]).any(axis=1)
        values = xp.moveaxis(moved[starts], 0, axis)
        shape = (moved.shape[0],)
    inverse = (xp.cumsum(starts) - 1).reshape(shape)
    positions = xp.flatnonzero(starts)
    counts = xp.diff(xp.concatenate([positions, xp.asarray([starts.shape[0]])]))
    return _unique_result(values, inverse, counts, input, return_inverse, return_counts)


def unravel_index(indices, shape) -> tuple:
    """The coordinates in an array of ``shape`` of each flat index."""
    if not isinstance(indices, Tensor):
        from engine.creation import tensor

        indices = tensor(indices)
    if indices._dtype.category != INT:
        raise TypeError(f"expected 'indices' to be integer dtype, but got {indices._dtype.name}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    total = int(np.prod(shape))
    xp = indices._device.xp
    data = indices._data
    if data.size and (int(data.min()) < -total or int(data.max()) >= total):
        raise RuntimeError(f"'indices' must be in range [-{total}, {total})" if total else
                           "'indices' must be empty when 'shape' has a zero")
    coords = xp.unravel_index(data % builtins.max(total, 1), shape)
    return tuple(wrap(xp.asarray(c).astype(int64.np), indices._device) for c in coords)


def nonzero_static(input, *, size: int, fill_value: int = -1):
    """``nonzero(input)`` cut or padded (with ``fill_value`` rows) to exactly ``size`` rows."""
    if size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be an non-negative integer, got {size}")
    xp = input._device.xp
    coords = xp.stack(xp.nonzero(input._data), axis=1) if input._data.ndim else xp.zeros((int(bool(input._data)), 0))
    out = xp.full((size, max(input._data.ndim, 0)), fill_value, dtype=np.int64)
    kept = min(size, coords.shape[0])
    out[:kept] = coords[:kept]
    return wrap(out, input._device)
