"""grid_sample and affine_grid against torch: every mode and padding mode, both align_corners, 4-D and 5-D,
gradients to the input and the grid, and float64 gradchecks."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F

RNG = np.random.default_rng(16)
X4 = RNG.standard_normal((2, 3, 5, 6))
GRID4 = RNG.random((2, 4, 7, 2)) * 2.6 - 1.3  # reaches outside [-1, 1] to exercise the padding modes
X5 = RNG.standard_normal((2, 2, 3, 4, 5))
GRID5 = RNG.random((2, 3, 2, 4, 3)) * 2.4 - 1.2

CASES_4D = [(m, p, a) for m in ("bilinear", "nearest", "bicubic") for p in ("zeros", "border", "reflection")
            for a in (False, True)]
CASES_5D = [(m, p, a) for m in ("bilinear", "nearest") for p in ("zeros", "border", "reflection") for a in (False, True)]


@pytest.mark.parametrize(("mode", "padding_mode", "align_corners"), CASES_4D)
def test_grid_sample_4d_matches_torch(both, mode, padding_mode, align_corners):
    both(lambda lib, x, g: lib.nn.functional.grid_sample(x, g, mode, padding_mode, align_corners), [X4, GRID4],
         rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize(("mode", "padding_mode", "align_corners"), CASES_5D)
def test_grid_sample_5d_matches_torch(both, mode, padding_mode, align_corners):
    both(lambda lib, x, g: lib.nn.functional.grid_sample(x, g, mode, padding_mode, align_corners), [X5, GRID5],
         rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflection"])
def test_grid_sample_gradcheck(padding_mode):
    x = engine.tensor(RNG.standard_normal((1, 2, 4, 5)), requires_grad=True)
    g = engine.tensor(RNG.random((1, 3, 3, 2)) * 2.2 - 1.1, requires_grad=True)
    assert engine.autograd.gradcheck(lambda a, b: F.grid_sample(a, b, "bilinear", padding_mode, False), (x, g))


@pytest.mark.parametrize(("size", "align_corners"), [((2, 3, 4, 5), False), ((2, 3, 4, 5), True),
                                                     ((2, 1, 3, 4, 5), False), ((2, 1, 1, 4, 1), False)])
def test_affine_grid_matches_torch(both, size, align_corners):
    theta = RNG.standard_normal((2, len(size) - 2, len(size) - 1))
    both(lambda lib, t: lib.nn.functional.affine_grid(t, list(size), align_corners), [theta])


def test_affine_grid_then_grid_sample_gradcheck():
    theta = engine.tensor(RNG.standard_normal((1, 2, 3)) * 0.5, requires_grad=True)
    x = engine.tensor(RNG.standard_normal((1, 1, 4, 4)))
    assert engine.autograd.gradcheck(lambda t: F.grid_sample(x, F.affine_grid(t, [1, 1, 3, 3], False),
                                                             align_corners=False), (theta,))


def test_grid_sample_rejects_bad_arguments():
    x, g = engine.randn(1, 1, 3, 3), engine.rand(1, 2, 2, 2)
    with pytest.raises(ValueError, match="mode"):
        F.grid_sample(x, g, mode="area")
    with pytest.raises(ValueError, match="padding_mode"):
        F.grid_sample(x, g, padding_mode="wrap")
    with pytest.raises(RuntimeError, match="bicubic"):
        F.grid_sample(engine.randn(1, 1, 2, 2, 2), engine.rand(1, 1, 1, 1, 3), mode="bicubic")
    with pytest.raises(ValueError, match="affine matrices"):
        F.affine_grid(engine.randn(1, 3, 3), [1, 1, 2, 2], align_corners=False)


def test_unset_align_corners_warns_and_means_false():
    x, g = engine.randn(1, 1, 3, 3), engine.rand(1, 2, 2, 2) * 2 - 1
    with pytest.warns(UserWarning, match="align_corners=False"):
        out = F.grid_sample(x, g)
    np.testing.assert_array_equal(out.numpy(), F.grid_sample(x, g, align_corners=False).numpy())
    with pytest.warns(UserWarning, match="unit-size"):
        F.affine_grid(engine.randn(1, 2, 3), [1, 1, 1, 4], align_corners=True)
