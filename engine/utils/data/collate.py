"""``default_collate``: merge a list of samples into a batch (tensors stacked, structure kept)."""

from __future__ import annotations

import collections.abc

import numpy as np

_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def default_collate(batch):
    """Stack tensors, arrays and numbers along a new first dimension; recurse into dicts and sequences.

    Tuples become lists of batched fields (as in PyTorch); strings stay lists of strings.

    Example:
        >>> x, y = default_collate([(engine.zeros(2), 0), (engine.ones(2), 1)])
        >>> x.shape, y.tolist()
        (engine.Size([2, 2]), [0, 1])
    """
    from engine.creation import tensor
    from engine.ops.shape import stack
    from engine.tensor import Tensor, wrap

    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray | np.generic) and elem.dtype.kind not in "OSUV":
        arrays = np.stack([np.asarray(b) for b in batch])
        return wrap(arrays, _cpu())
    if isinstance(elem, bool):
        return tensor(batch)
    if isinstance(elem, float):
        return tensor(batch, dtype="float64")
    if isinstance(elem, int):
        return tensor(batch)
    if isinstance(elem, str | bytes):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        fields = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch, strict=True)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(list(samples)) for samples in zip(*batch, strict=True)]
        if isinstance(elem, tuple):
            return columns
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise TypeError(_ERROR.format(type(elem)))


def default_convert(data):
    """Turn NumPy arrays (also inside dicts and sequences) into tensors; used when batching is off.

    Example:
        >>> default_convert(np.zeros(2)).dtype
        engine.float64
    """
    from engine.tensor import Tensor, wrap

    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OSUV":
        return wrap(data, _cpu())
    if isinstance(data, np.generic) and data.dtype.kind not in "OSUV":
        return wrap(np.asarray(data), _cpu())
    if isinstance(data, str | bytes):
        return data
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(data[key]) for key in data}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def _cpu():
    from engine.device import CPU

    return CPU
