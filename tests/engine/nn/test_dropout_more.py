"""FeatureAlphaDropout / feature_alpha_dropout: channel-wise draws, PyTorch's affine constants, SELU statistics."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

X = np.random.default_rng(23).standard_normal((64, 32, 3, 3))


def _split(out: np.ndarray, x: np.ndarray, p: float):
    """Per channel: kept (an affine map of x) or dropped (one constant); returns (kept mask, a, b, constant)."""
    flat_out, flat_x = out.reshape(out.shape[0], out.shape[1], -1), x.reshape(x.shape[0], x.shape[1], -1)
    dropped = np.ptp(flat_out, axis=2) < 1e-12
    kept_out, kept_x = flat_out[~dropped], flat_x[~dropped]
    a = (kept_out[:, 1] - kept_out[:, 0]) / (kept_x[:, 1] - kept_x[:, 0])
    b = kept_out[:, 0] - a * kept_x[:, 0]
    return ~dropped, a, b, flat_out[dropped][:, 0]


def test_constants_match_torch(torch):
    p = 0.3
    engine.manual_seed(0)
    e = F.feature_alpha_dropout(engine.tensor(X), p, training=True).numpy()
    t = torch.nn.functional.feature_alpha_dropout(torch.tensor(X), p, training=True).numpy()
    (e_kept, e_a, e_b, e_c), (t_kept, t_a, t_b, t_c) = _split(e, X, p), _split(t, X, p)
    np.testing.assert_allclose(e_a, t_a[0], rtol=1e-9)
    np.testing.assert_allclose(e_b, t_b[0], rtol=1e-9)
    np.testing.assert_allclose(e_c, t_c[0], rtol=1e-9)
    assert abs(e_kept.mean() - (1 - p)) < 0.05 and abs(t_kept.mean() - (1 - p)) < 0.05


def test_selu_statistics_and_gradient():
    engine.manual_seed(1)
    x = engine.tensor(X, requires_grad=True)
    out = nn.FeatureAlphaDropout(0.2)(x)
    assert abs(out.detach().numpy().mean()) < 0.05 and abs(out.detach().numpy().std() - 1) < 0.05
    out.sum().backward()
    kept, a, _, _ = _split(out.detach().numpy(), X, 0.2)
    grad = x.grad.numpy().reshape(64, 32, -1)
    np.testing.assert_allclose(grad[kept], a[0], rtol=1e-12)
    assert not grad[~kept].any()


def test_eval_zero_and_one():
    x = engine.tensor(X[:2])
    assert nn.FeatureAlphaDropout(0.5).eval()(x) is x
    assert F.feature_alpha_dropout(x, 0.0, training=True) is x
    assert not F.feature_alpha_dropout(x, 1.0, training=True).numpy().any()


def test_repr_and_errors(torch):
    assert repr(nn.FeatureAlphaDropout(0.2)) == repr(torch.nn.FeatureAlphaDropout(0.2))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.feature_alpha_dropout(engine.randn(2, 3), 1.5, training=True)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        F.feature_alpha_dropout(engine.randn(3), 0.5, training=True)
