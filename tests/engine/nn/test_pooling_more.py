"""LPPool1d/2d, AdaptiveMaxPool1d and the ``max_pool*_with_indices`` forms against torch, float64."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import nn

RNG = np.random.default_rng(5)
X1 = RNG.standard_normal((2, 3, 11))
X2 = RNG.standard_normal((2, 3, 7, 9))
POS2 = np.abs(X2) + 0.1

CASES = [
    ("lp_pool1d_p2", lambda lib, x: lib.nn.LPPool1d(2, 3)(x), [X1]),
    ("lp_pool1d_stride_ceil", lambda lib, x: lib.nn.LPPool1d(1.5, 4, stride=2, ceil_mode=True)(x.abs() + 0.1),
     [X1]),
    ("lp_pool2d_p2", lambda lib, x: lib.nn.LPPool2d(2, (2, 3))(x), [X2]),
    ("lp_pool2d_p3_stride", lambda lib, x: lib.nn.functional.lp_pool2d(x, 3.0, 3, stride=2), [POS2]),
    ("lp_pool2d_unbatched", lambda lib, x: lib.nn.LPPool2d(2, 2)(x), [X2[0]]),
    ("adaptive_max_pool1d", lambda lib, x: lib.nn.AdaptiveMaxPool1d(4)(x), [X1]),
    ("adaptive_max_pool1d_divisible", lambda lib, x: lib.nn.functional.adaptive_max_pool1d(x, 1), [X1[0]]),
    ("adaptive_max_pool1d_indices", lambda lib, x: lib.nn.AdaptiveMaxPool1d(4, return_indices=True)(x), [X1]),
    ("adaptive_max_pool1d_with_indices", lambda lib, x: lib.nn.functional.adaptive_max_pool1d_with_indices(x, 11),
     [X1]),
    ("adaptive_max_pool2d_indices", lambda lib, x: lib.nn.AdaptiveMaxPool2d((3, 4), return_indices=True)(x),
     [X2]),
    ("adaptive_max_pool2d_indices_divisible_none", lambda lib, x: lib.nn.functional.adaptive_max_pool2d(
        x, (None, 3), return_indices=True), [X2[0, :, :6]]),
    ("adaptive_max_pool2d_with_indices", lambda lib, x: lib.nn.functional.adaptive_max_pool2d_with_indices(
        x, 5), [X2]),
    ("max_pool1d_with_indices", lambda lib, x: lib.nn.functional.max_pool1d_with_indices(x, 3, 2, 1), [X1]),
    ("max_pool2d_with_indices", lambda lib, x: lib.nn.functional.max_pool2d_with_indices(x, 2), [X2]),
]


@pytest.mark.parametrize(("name", "fn", "floats"), CASES, ids=[c[0] for c in CASES])
def test_pooling_matches_torch(both, name, fn, floats):
    both(fn, floats)


def test_repr_matches_torch(torch):
    for name, args, kwargs in [("LPPool1d", (2, 3), {}), ("LPPool2d", (1.5, (2, 3)), {"stride": 1}),
                               ("AdaptiveMaxPool1d", (5,), {})]:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_adaptive_max_pool1d_rejects_4d():
    import engine

    with pytest.raises(RuntimeError, match="2D or 3D"):
        nn.AdaptiveMaxPool1d(2)(engine.randn(1, 2, 3, 4))


UNPOOL = [
    ("max_unpool2d", 2, lambda lib: lib.nn.MaxPool2d(2, return_indices=True), lambda lib: lib.nn.MaxUnpool2d(2),
     X2[:, :, :6, :8], None),
    ("max_unpool2d_stride_pad_size", 2, lambda lib: lib.nn.MaxPool2d(3, 2, 1, return_indices=True),
     lambda lib: lib.nn.MaxUnpool2d(3, 2, 1), X2, (7, 9)),
    ("max_unpool1d", 1, lambda lib: lib.nn.MaxPool1d(3, 2, return_indices=True),
     lambda lib: lib.nn.MaxUnpool1d(3, 2), X1, [2, 3, 12]),
    ("max_unpool1d_unbatched", 1, lambda lib: lib.nn.MaxPool1d(2, return_indices=True),
     lambda lib: lib.nn.MaxUnpool1d(2), X1[0, :, :10], None),
]


@pytest.mark.parametrize(("name", "dims", "pool", "unpool", "x", "size"), UNPOOL, ids=[c[0] for c in UNPOOL])
def test_max_unpool_matches_torch(both, name, dims, pool, unpool, x, size):
    def run(lib, t):
        values, indices = pool(lib)(t)
        return unpool(lib)(values, indices, output_size=size)

    both(run, [x])


def test_max_unpool_repr_and_errors(torch):
    import engine

    assert repr(nn.MaxUnpool2d(2)) == repr(torch.nn.MaxUnpool2d(2))
    assert repr(nn.MaxUnpool1d(3, 2, 1)) == repr(torch.nn.MaxUnpool1d(3, 2, 1))
    x = engine.randn(1, 1, 2, 2)
    with pytest.raises(ValueError, match="invalid output_size"):
        nn.MaxUnpool2d(2)(x, engine.zeros(1, 1, 2, 2, dtype=engine.int64), output_size=(9, 9))
    with pytest.raises(RuntimeError, match="invalid max index"):
        nn.MaxUnpool2d(2)(x, engine.full((1, 1, 2, 2), 16, dtype=engine.int64))
    with pytest.raises(RuntimeError, match="shape of indices"):
        nn.MaxUnpool2d(2)(x, engine.zeros(1, 1, 2, dtype=engine.int64))


X3 = RNG.standard_normal((2, 2, 5, 6, 7))
POOL3D = [
    ("max_pool3d", lambda lib, x: lib.nn.MaxPool3d(2)(x), [X3]),
    ("max_pool3d_stride_pad_dilation_ceil", lambda lib, x: lib.nn.MaxPool3d((3, 2, 3), (2, 1, 2), (1, 1, 0),
                                                                            (1, 2, 1), ceil_mode=True)(x), [X3]),
    ("max_pool3d_unbatched", lambda lib, x: lib.nn.functional.max_pool3d(x, 3, 2), [X3[0]]),
    ("avg_pool3d", lambda lib, x: lib.nn.AvgPool3d(2)(x), [X3]),
    ("avg_pool3d_pad_exclude_ceil", lambda lib, x: lib.nn.AvgPool3d((3, 2, 3), 2, 1, ceil_mode=True,
                                                                    count_include_pad=False)(x), [X3]),
    ("avg_pool3d_pad_include", lambda lib, x: lib.nn.functional.avg_pool3d(x, 3, (1, 2, 2), (1, 0, 1)), [X3]),
    ("avg_pool3d_divisor_override", lambda lib, x: lib.nn.AvgPool3d(2, 2, 1, divisor_override=3)(x), [X3]),
    ("adaptive_avg_pool3d", lambda lib, x: lib.nn.AdaptiveAvgPool3d((3, 4, 2))(x), [X3]),
    ("adaptive_avg_pool3d_none", lambda lib, x: lib.nn.functional.adaptive_avg_pool3d(x, (None, 3, 1)), [X3]),
    ("adaptive_max_pool3d", lambda lib, x: lib.nn.AdaptiveMaxPool3d((2, 4, 3))(x), [X3]),
    ("adaptive_max_pool3d_unbatched", lambda lib, x: lib.nn.functional.adaptive_max_pool3d(x, 2), [X3[0]]),
    ("lp_pool3d", lambda lib, x: lib.nn.LPPool3d(2, 2)(x), [X3]),
    ("lp_pool3d_stride", lambda lib, x: lib.nn.functional.lp_pool3d(x.abs() + 0.1, 1.5, (2, 3, 2), stride=1),
     [X3]),
]


@pytest.mark.parametrize(("name", "fn", "floats"), POOL3D, ids=[c[0] for c in POOL3D])
def test_pool3d_matches_torch(both, name, fn, floats):
    both(fn, floats)


def test_pool3d_repr_and_errors(torch):
    import engine

    for name, args, kwargs in [("MaxPool3d", (3, 2, 1), {}), ("AvgPool3d", ((2, 3, 2),), {"padding": 1}),
                               ("AdaptiveAvgPool3d", ((2, 3, 4),), {}), ("AdaptiveMaxPool3d", (2,), {}),
                               ("LPPool3d", (2, 3), {})]:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))
    with pytest.raises(RuntimeError, match="4D or 5D"):
        nn.MaxPool3d(2)(engine.randn(2, 3, 4))
    values, indices = nn.MaxPool3d(2, return_indices=True)(engine.randn(1, 1, 4, 4, 4))
    assert tuple(values.shape) == tuple(indices.shape) == (1, 1, 2, 2, 2)


def test_max_unpool3d_with_torch_indices(torch):
    """MaxUnpool3d reads indices made by torch's own pool."""
    x = X3[:, :, :4, :6, :6]
    values, indices = torch.nn.functional.max_pool3d(torch.tensor(x), 2, return_indices=True)
    e_vals = engine.tensor(values.numpy(), requires_grad=True)
    t_vals = values.clone().requires_grad_()
    out_e = nn.MaxUnpool3d(2)(e_vals, engine.tensor(indices.numpy()))
    out_t = torch.nn.MaxUnpool3d(2)(t_vals, indices)
    np.testing.assert_array_equal(out_e.detach().numpy(), out_t.detach().numpy())
    g = RNG.standard_normal(tuple(out_t.shape))
    out_e.backward(engine.tensor(g))
    out_t.backward(torch.tensor(g))
    np.testing.assert_array_equal(e_vals.grad.numpy(), t_vals.grad.numpy())
    assert repr(nn.MaxUnpool3d(2, 1)) == repr(torch.nn.MaxUnpool3d(2, 1))
