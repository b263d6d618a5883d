"""RReLU and the in-place functional activations (``elu_``, ``threshold_``, ...) against torch, float64."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

X = np.random.default_rng(3).standard_normal((4, 5)) * 2

INPLACE = [
    ("elu_", lambda F, x: F.elu_(x, 0.7)),
    ("selu_", lambda F, x: F.selu_(x)),
    ("celu_", lambda F, x: F.celu_(x, 1.3)),
    ("leaky_relu_", lambda F, x: F.leaky_relu_(x, 0.2)),
    ("hardtanh_", lambda F, x: F.hardtanh_(x, -0.5, 1.5)),
    ("threshold_", lambda F, x: F.threshold_(x, 0.3, -2.0)),
    ("rrelu_eval", lambda F, x: F.rrelu_(x, 0.1, 0.3)),
]


@pytest.mark.parametrize(("name", "fn"), INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_functional_matches_torch(both, name, fn):
    def run(lib, x):
        y = x * 1.0  # a non-leaf to modify in place
        out = fn(lib.nn.functional, y)
        assert out is y
        return out

    both(run, [X])


def test_rrelu_module_eval_matches_torch(both, torch):
    both(lambda lib, x: lib.nn.RReLU(0.1, 0.4).eval()(x), [X])
    assert repr(nn.RReLU()) == repr(torch.nn.RReLU())
    assert repr(nn.RReLU(0.2, 0.5, inplace=True)) == repr(torch.nn.RReLU(0.2, 0.5, inplace=True))


def test_rrelu_training_draws_slopes_in_range():
    engine.manual_seed(0)
    x = engine.tensor(-np.abs(X) - 0.1, requires_grad=True)
    out = nn.RReLU(0.1, 0.3)(x)
    slope = (out / x).detach().numpy()
    assert (slope >= 0.1).all() and (slope <= 0.3).all() and slope.std() > 0
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slope, rtol=1e-12)
    pos = engine.tensor(np.abs(X))
    np.testing.assert_array_equal(F.rrelu(pos, training=True).numpy(), np.abs(X))
