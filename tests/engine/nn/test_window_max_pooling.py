"""max_pool3d / adaptive_max_pool3d with indices and FractionalMaxPool2d/3d against torch (values, indices,
gradients), with fixed ``_random_samples`` so the fractional windows are the same on both sides."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import nn

RNG = np.random.default_rng(16)
X3 = RNG.standard_normal((2, 3, 7, 8, 9))
X2 = RNG.standard_normal((2, 3, 9, 10))
U2 = RNG.random((2, 3, 2))
U3 = RNG.random((2, 3, 3))

CASES = [
    ("max_pool3d_indices", lambda lib, x: lib.nn.functional.max_pool3d(x, 3, 2, 1, return_indices=True), [X3], ()),
    ("max_pool3d_with_indices_ceil", lambda lib, x: lib.nn.functional.max_pool3d_with_indices(
        x, 2, ceil_mode=True), [X3], ()),
    ("max_pool3d_dilated_module", lambda lib, x: lib.nn.MaxPool3d((3, 2, 3), 2, 1, dilation=2,
                                                                   return_indices=True)(x), [X3], ()),
    ("max_pool3d_unbatched", lambda lib, x: lib.nn.functional.max_pool3d_with_indices(x, 2, 1), [X3[0]], ()),
    ("adaptive_max_pool3d_indices", lambda lib, x: lib.nn.AdaptiveMaxPool3d((3, 4, 5), return_indices=True)(x),
     [X3], ()),
    ("adaptive_max_pool3d_with_indices_none", lambda lib, x: lib.nn.functional.adaptive_max_pool3d_with_indices(
        x, (2, None, 4)), [X3], ()),
    ("fractional2d_size", lambda lib, x, u: lib.nn.functional.fractional_max_pool2d(
        x, (2, 3), output_size=(5, 4), return_indices=True, _random_samples=u), [X2], [U2]),
    ("fractional2d_ratio_module", lambda lib, x, u: lib.nn.FractionalMaxPool2d(
        3, output_ratio=(0.5, 0.5), _random_samples=u)(x), [X2], [U2]),
    ("fractional2d_with_indices", lambda lib, x, u: lib.nn.functional.fractional_max_pool2d_with_indices(
        x, 2, output_size=8, _random_samples=u), [X2], [U2]),
    ("fractional3d_size", lambda lib, x, u: lib.nn.functional.fractional_max_pool3d(
        x, 2, output_size=(4, 5, 3), return_indices=True, _random_samples=u), [X3], [U3]),
    ("fractional3d_module_indices", lambda lib, x, u: lib.nn.FractionalMaxPool3d(
        (2, 3, 2), output_size=(5, 5, 6), return_indices=True, _random_samples=u)(x), [X3], [U3]),
    ("fractional3d_with_indices_unbatched", lambda lib, x, u: lib.nn.functional.fractional_max_pool3d_with_indices(
        x, 2, output_size=3, _random_samples=u[:1]), [X3[0]], [U3]),
]


@pytest.mark.parametrize(("name", "fn", "floats", "ints"), CASES, ids=[c[0] for c in CASES])
def test_window_max_pooling_matches_torch(both, name, fn, floats, ints):
    both(fn, floats, ints)


def test_fractional_float32_windows_match_torch(torch):
    """The window starts are computed in the input's dtype, as PyTorch does."""
    x = RNG.standard_normal((2, 3, 17, 19)).astype(np.float32)
    u = RNG.random((2, 3, 2)).astype(np.float32)
    ours = engine.nn.functional.fractional_max_pool2d(engine.tensor(x), 2, output_size=(11, 13), return_indices=True,
                                                      _random_samples=engine.tensor(u))
    ref = torch.nn.functional.fractional_max_pool2d(torch.tensor(x), 2, output_size=(11, 13), return_indices=True,
                                                    _random_samples=torch.tensor(u))
    np.testing.assert_array_equal(ours[0].numpy(), ref[0].numpy())
    np.testing.assert_array_equal(ours[1].numpy(), ref[1].numpy())


def test_fractional_gradcheck():
    x = engine.tensor(RNG.standard_normal((1, 2, 6, 7)), requires_grad=True)
    u = engine.tensor(RNG.random((1, 2, 2)))
    assert engine.autograd.gradcheck(
        lambda t: engine.nn.functional.fractional_max_pool2d(t, 2, output_size=(4, 4), _random_samples=u), (x,))


def test_fractional_without_samples_draws_windows_and_keeps_shape():
    out = nn.FractionalMaxPool2d(2, output_size=(4, 5))(engine.randn(2, 3, 9, 10))
    assert tuple(out.shape) == (2, 3, 4, 5)


def test_fractional_rejects_bad_arguments():
    with pytest.raises(ValueError, match="either an output size"):
        nn.FractionalMaxPool2d(2)
    with pytest.raises(RuntimeError, match="too large"):
        engine.nn.functional.fractional_max_pool2d(engine.randn(1, 1, 4, 4), 3, output_size=3)
    with pytest.raises(RuntimeError, match="_random_samples"):
        engine.nn.functional.fractional_max_pool2d(engine.randn(1, 1, 6, 6), 2, output_size=3,
                                                   _random_samples=engine.rand(1, 1, 3))
