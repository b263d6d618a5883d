"""Fetchers: turn one sampler output (an index, or a list of them) into a collated batch."""

from __future__ import annotations

import numpy as np


class MapFetcher:
    """Index a map-style dataset; a list of indices becomes one collated batch."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.fast_rows = _fast_rows(dataset, collate_fn) if auto_collation else None

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.fast_rows is not None:
            return self.fast_rows(index)
        getitems = getattr(self.dataset, "__getitems__", None)
        data = getitems(index) if getitems is not None else [self.dataset[i] for i in index]
        return self.collate_fn(data)


def _fast_rows(dataset, collate_fn):
    """For a TensorDataset with default collation: one fancy-index per tensor, the same result as
    stacking the rows one by one."""
    from engine.tensor import wrap
    from engine.utils.data.collate import default_collate
    from engine.utils.data.dataset import TensorDataset

    if type(dataset) is not TensorDataset or collate_fn is not default_collate:
        return None
    tensors = dataset.tensors
    if any(t.requires_grad for t in tensors):
        return None

    def rows(index):
        rows = np.asarray(index, dtype=np.int64)
        return [wrap(t._data[rows if t._device.type == "cpu" else t._device.xp.asarray(rows)], t._device)
                for t in tensors]

    return rows


class IterableFetcher:
    """Draw the next sample (or ``batch_size`` samples) from an iterable dataset."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.iterator = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        data = []
        for _ in index:
            try:
                data.append(next(self.iterator))
            except StopIteration:
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def make_fetcher(kind: str, dataset, auto_collation: bool, collate_fn, drop_last: bool):
    cls = IterableFetcher if kind == "iterable" else MapFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)
