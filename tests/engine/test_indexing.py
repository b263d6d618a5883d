"""Indexing and assignment against PyTorch: reads, writes, gradients, versions and errors."""

from __future__ import annotations

import numpy as np
import pytest
from torch_oracle import require_torch

import engine

torch = require_torch()

BASE = np.arange(60, dtype=np.float64).reshape(3, 4, 5) / 7


def _index(lib, spec):
    """Build the index for ``lib`` (tensors inside the spec become lib tensors)."""
    if isinstance(spec, tuple):
        return tuple(_index(lib, s) for s in spec)
    if isinstance(spec, np.ndarray):
        return lib.tensor(spec)
    return spec


READS = {
    "int": 1,
    "negative_int": -1,
    "slice_step": slice(None, None, 2),
    "negative_slice": (slice(-2, None), slice(None, -1)),
    "ellipsis_last": (Ellipsis, 0),
    "none_inserts_dim": (None, 1, None),
    "int_list": [2, 0, 2],
    "int_tensor_2d": np.array([[0, 1], [2, 2]]),
    "two_int_tensors": (np.array([0, 2]), np.array([3, 1])),
    "int_tensor_between_slices": (slice(None), np.array([3, 0, 3]), slice(1, 3)),
    "bool_mask_first_dim": np.array([True, False, True]),
    "bool_mask_full": BASE > 4,
    "scalar_int_tensor": np.array(1),
    "mixed_int_and_slice": (0, slice(1, 3), np.array([4, 0])),
}


@pytest.mark.parametrize("name", READS)
def test_indexing_reads_and_gradients_match_torch(name):
    spec = READS[name]
    results = []
    for lib in (engine, torch):
        x = lib.tensor(BASE, requires_grad=True)
        out = x[_index(lib, spec)]
        weights = lib.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)))
        (out * weights).sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])


WRITES = {
    "int_scalar": (1, 5.0),
    "slice_broadcast_row": ((slice(None), 0), np.arange(5.0)),
    "bool_mask_scalar": (BASE > 3, -1.0),
    "int_tensor_rows": (np.array([0, 2]), np.ones((4, 5))),
    "ellipsis_column": ((Ellipsis, 2), 0.5),
    "tensor_pair_points": ((np.array([0, 1]), np.array([1, 3])), np.array([[9.0] * 5, [8.0] * 5])),
    "int_slice_and_tensor": ((0, slice(None), np.array([1, 3])), np.arange(8.0).reshape(4, 2)),
}


def _value(lib, value):
    return lib.tensor(value, requires_grad=True) if isinstance(value, np.ndarray) else value


@pytest.mark.parametrize("name", WRITES)
def test_setitem_writes_and_gradients_match_torch(name):
    spec, value = WRITES[name]
    results = []
    for lib in (engine, torch):
        x = lib.tensor(BASE, requires_grad=True)
        v = _value(lib, value)
        y = x * 1
        y[_index(lib, spec)] = v * 2 if isinstance(v, lib.Tensor) else v
        (y * y).sum().backward()
        grads = [x.grad.numpy()] + ([v.grad.numpy()] if isinstance(v, lib.Tensor) else [])
        results.append((y.detach().numpy(), grads))
    np.testing.assert_allclose(results[0][0], results[1][0])
    for mine, theirs in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(mine, theirs)


def test_setitem_without_grad_writes_in_place_and_bumps_the_version():
    x = engine.zeros(2, 3)
    view = x[0]
    before = x._version
    x[0, 1] = 4
    x[:, 2] = engine.tensor([1.0, 2.0])
    assert view.tolist() == [0.0, 4.0, 1.0]
    assert x._version == before + 2
    x[x > 1.5] = 0
    assert x.tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def test_setitem_casts_values_to_the_tensor_dtype():
    x = engine.zeros(3, dtype=engine.int64)
    x[0] = 2.7
    x[1:] = engine.tensor([5.0, 6.0])
    assert x.tolist() == [2, 5, 6]


def test_views_share_memory_and_version_with_their_base():
    x = engine.arange(6.0).reshape(2, 3)
    row = x[1]
    row.add_(10)
    assert x.tolist() == [[0.0, 1.0, 2.0], [13.0, 14.0, 15.0]]
    assert x._version == row._version == 1
    assert x.t().flip(0).is_contiguous() is False


def test_out_of_range_index_raises_index_error():
    x = engine.zeros(3)
    with pytest.raises(IndexError):
        x[3]
    with pytest.raises(IndexError):
        x[engine.tensor([0, 5])]


def test_float_tensor_index_is_rejected():
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        engine.zeros(3)[engine.tensor([0.0])]


def test_gather_scatter_checks_and_results():
    x = engine.arange(12.0).reshape(3, 4)
    idx = engine.tensor([[3, 0], [1, 1], [0, 2]])
    assert x.gather(1, idx).tolist() == [[3.0, 0.0], [5.0, 5.0], [8.0, 10.0]]
    with pytest.raises(RuntimeError, match="int64"):
        x.gather(1, idx.float())
    summed = engine.zeros(3, 4).scatter_add(1, idx, engine.ones(3, 2))
    assert summed.tolist() == [[1.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]]
    filled = engine.zeros(2, 2).scatter_(1, engine.tensor([[1], [0]]), 7.0)
    assert filled.tolist() == [[0.0, 7.0], [7.0, 0.0]]


def test_nonzero_and_where_with_one_argument():
    x = engine.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert x.nonzero().tolist() == torch.tensor([[0.0, 1.0], [2.0, 0.0]]).nonzero().tolist()
    rows, cols = engine.where(x > 0)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_masked_fill_accepts_zero_dim_tensor_value_and_in_place_form():
    x = engine.tensor([1.0, -2.0, 3.0])
    assert x.masked_fill(x < 0, engine.tensor(0.0)).tolist() == [1.0, 0.0, 3.0]
    x.masked_fill_(x > 2, 9.0)
    assert x.tolist() == [1.0, -2.0, 9.0]
