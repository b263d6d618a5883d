"""The fast paths of conv2d, max_pool2d and erf against PyTorch / math.erf.

conv2d works through the batch in cache-sized blocks on a "wide" output grid; max_pool2d has a
tiled path (kernel == stride) with its own argmax; erf evaluates each element by one power series.
These tests force several blocks, ties and NaN through those paths.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine.ops import conv as conv_ops
from engine.ops import pooling as pool_ops
from engine.ops.unary import erf_array

RNG = np.random.default_rng(7)

CONV_CASES = [  # (input shape, weight shape, conv2d keyword arguments)
    ((5, 3, 9, 10), (4, 3, 3, 3), {"padding": 1}),
    ((5, 4, 8, 8), (6, 2, 3, 3), {"padding": 1, "groups": 2}),
    ((5, 3, 9, 10), (5, 3, 3, 2), {"stride": 2, "padding": (1, 0)}),
    ((5, 3, 9, 10), (5, 3, 3, 3), {"stride": (2, 1), "dilation": 2, "padding": 2}),
    ((5, 3, 6, 7), (4, 3, 3, 3), {"padding": "same", "dilation": (1, 2)}),
    ((5, 6, 5, 5), (6, 1, 3, 3), {"groups": 6, "padding": 1}),
    ((5, 2, 7, 7), (3, 2, 7, 7), {}),
]


@pytest.mark.parametrize("block_elements", [1, 1 << 30], ids=["sample_blocks", "one_block"])
@pytest.mark.parametrize(("x_shape", "w_shape", "kwargs"), CONV_CASES, ids=lambda v: str(v))
def test_conv2d_blocks_match_torch(torch, monkeypatch, block_elements, x_shape, w_shape, kwargs):
    monkeypatch.setattr(conv_ops, "_BLOCK_ELEMENTS", block_elements)
    x, w, b = (RNG.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1]))
    ex, ew, eb = (engine.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out, expected = F.conv2d(ex, ew, eb, **kwargs), torch.nn.functional.conv2d(tx, tw, tb, **kwargs)
    grad = RNG.standard_normal(tuple(expected.shape))
    out.backward(engine.tensor(grad))
    expected.backward(torch.tensor(grad))
    assert out.is_contiguous()
    for mine, theirs in ((out, expected), (ex.grad, tx.grad), (ew.grad, tw.grad), (eb.grad, tb.grad)):
        np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def _pool_input(kind: str, shape) -> np.ndarray:
    x = RNG.standard_normal(shape).astype(np.float32)
    if kind == "relu_ties":  # many windows of equal zeros, and repeated positive values
        x = np.maximum(np.round(x * 2) / 2, 0)
    elif kind == "nan":
        x[RNG.random(shape) < 0.2] = np.nan
    return x


@pytest.mark.parametrize("kind", ["random", "relu_ties", "nan"])
@pytest.mark.parametrize(("shape", "kwargs"), [
    ((3, 4, 8, 8), {"kernel_size": 2}),
    ((3, 4, 9, 12), {"kernel_size": 3}),
    ((3, 4, 8, 9), {"kernel_size": (2, 3)}),
    ((7, 3, 8, 8), {"kernel_size": 2, "block_elements": 400}),  # several cache-sized blocks
    ((3, 4, 9, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((3, 4, 9, 9), {"kernel_size": 2, "stride": 1, "ceil_mode": True}),
], ids=lambda v: str(v))
def test_max_pool2d_routes_gradient_like_torch(torch, monkeypatch, kind, shape, kwargs):
    kwargs = dict(kwargs)
    monkeypatch.setattr(pool_ops, "_BLOCK_ELEMENTS", kwargs.pop("block_elements", 1 << 19))
    x = _pool_input(kind, shape)
    ex, tx = engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, index = F.max_pool2d(ex, return_indices=True, **kwargs)
    expected, expected_index = torch.nn.functional.max_pool2d(tx, return_indices=True, **kwargs)
    grad = RNG.standard_normal(tuple(expected.shape)).astype(np.float32)
    out.backward(engine.tensor(grad))
    expected.backward(torch.tensor(grad))
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    np.testing.assert_array_equal(index.numpy(), expected_index.numpy())
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_erf_matches_math_erf_to_float64_rounding():
    x = np.concatenate([np.linspace(-7, 7, 20001), [0.0, -0.0, 1.0, -1.0, 6.0, -6.0, 1 - 1e-12, 1e-300, 30.0]])
    expected = np.array([math.erf(v) for v in x])
    got = erf_array(x, np)
    np.testing.assert_allclose(got, expected, rtol=5e-15, atol=2e-15)
    assert np.signbit(erf_array(np.array([0.0, -0.0]), np)).tolist() == [False, True]


def test_erf_of_special_values_and_dtype():
    got = erf_array(np.array([np.nan, np.inf, -np.inf], dtype=np.float32), np)
    assert got.dtype == np.float32
    assert np.isnan(got[0]) and got[1:].tolist() == [1.0, -1.0]
