"""nn.init distributions and bounds, default layer initialisation, and nn.utils against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from engine import nn


@pytest.mark.parametrize(("nonlinearity", "param"), [("linear", None), ("conv2d", None), ("sigmoid", None),
                                                     ("tanh", None), ("relu", None), ("leaky_relu", None),
                                                     ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_torch(torch, nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


def _stats(fill, shape=(400, 500)):
    t = engine.empty(*shape)
    out = fill(t)
    assert out is t
    return t.numpy()


def test_uniform_normal_constant():
    u = _stats(lambda t: nn.init.uniform_(t, -2, 3))
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.02
    n = _stats(lambda t: nn.init.normal_(t, 1.0, 0.5))
    assert abs(n.mean() - 1.0) < 0.01 and abs(n.std() - 0.5) < 0.01
    assert (_stats(lambda t: nn.init.constant_(t, 0.25)) == 0.25).all()
    assert (_stats(nn.init.ones_) == 1).all() and (_stats(nn.init.zeros_) == 0).all()


@pytest.mark.parametrize(("fn", "expected_std"), [
    (lambda t: nn.init.xavier_uniform_(t, gain=2.0), 2.0 * math.sqrt(2.0 / (500 + 400))),
    (lambda t: nn.init.xavier_normal_(t), math.sqrt(2.0 / (500 + 400))),
    (lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(500) / math.sqrt(3)),
    (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2.0 / 400)),
    (lambda t: nn.init.trunc_normal_(t, std=0.5, a=-1.0, b=1.0), 0.5 * 0.8796),
])
def test_fan_based_initialisers_have_the_expected_spread(fn, expected_std):
    values = _stats(fn)
    assert abs(values.std() / expected_std - 1) < 0.03
    assert abs(values.mean()) < 0.05 * expected_std + 1e-3


def test_trunc_normal_respects_bounds():
    values = _stats(lambda t: nn.init.trunc_normal_(t, mean=0.5, std=1.0, a=0.0, b=1.0))
    assert values.min() >= 0.0 and values.max() <= 1.0


def test_orthogonal_rows_and_columns():
    wide = _stats(lambda t: nn.init.orthogonal_(t, gain=3.0), (4, 10))
    np.testing.assert_allclose(wide @ wide.T, 9 * np.eye(4), atol=1e-4)
    tall = _stats(nn.init.orthogonal_, (10, 4))
    np.testing.assert_allclose(tall.T @ tall, np.eye(4), atol=1e-5)


def test_init_is_reproducible_and_untracked():
    engine.manual_seed(7)
    a = nn.Linear(8, 4)
    engine.manual_seed(7)
    b = nn.Linear(8, 4)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    w = nn.Parameter(engine.empty(3, 3))
    nn.init.kaiming_uniform_(w)
    assert w.grad_fn is None and w.requires_grad


@pytest.mark.parametrize(("factory", "bound_of"), [
    (lambda: nn.Linear(50, 30), lambda m: 1 / math.sqrt(50)),
    (lambda: nn.Conv2d(6, 8, 3, groups=2), lambda m: 1 / math.sqrt(3 * 9)),
    (lambda: nn.Conv1d(4, 8, 5), lambda m: 1 / math.sqrt(20)),
])
def test_default_weight_and_bias_bounds_match_torch(factory, bound_of):
    m = factory()
    bound = bound_of(m)
    for p in (m.weight, m.bias):
        assert np.abs(p.detach().numpy()).max() <= bound + 1e-7
    assert np.abs(m.weight.detach().numpy()).max() > 0.9 * bound


def test_other_default_initialisations():
    bn = nn.BatchNorm2d(3)
    assert bn.weight.tolist() == [1.0] * 3 and bn.bias.tolist() == [0.0] * 3
    assert bn.running_var.tolist() == [1.0] * 3 and bn.num_batches_tracked.item() == 0
    mha = nn.MultiheadAttention(8, 2)
    assert not mha.in_proj_bias.detach().numpy().any() and not mha.out_proj.bias.detach().numpy().any()
    assert np.abs(mha.in_proj_weight.detach().numpy()).max() <= math.sqrt(6 / (8 + 24))
    lstm = nn.LSTM(3, 16)
    assert all(np.abs(p.detach().numpy()).max() <= 0.25 for p in lstm.parameters())
    emb = nn.Embedding(1000, 20)
    assert abs(emb.weight.detach().numpy().std() - 1) < 0.05


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_torch(torch, norm_type):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ours = [nn.Parameter(engine.zeros(*g.shape, dtype=engine.float64)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(*g.shape, dtype=torch.float64)) for g in grads]
    for p, q, g in zip(ours, theirs, grads, strict=True):
        p.grad = engine.tensor(g)
        q.grad = torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, 0.5, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type)
    assert total.item() == pytest.approx(expected.item())
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10)


def test_clip_grad_norm_nonfinite_and_value():
    p = nn.Parameter(engine.zeros(3))
    p.grad = engine.tensor([1.0, float("inf"), -5.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    p.grad = engine.tensor([1.0, 3.0, -5.0])
    nn.utils.clip_grad_value_(p, 2.0)
    assert p.grad.tolist() == [1.0, 2.0, -2.0]
    assert nn.utils.clip_grad_norm_([nn.Parameter(engine.zeros(1))], 1.0).item() == 0.0


def test_parameters_vector_round_trip():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == engine.Size([3 * 2 + 2 + 2 + 1])
    nn.utils.vector_to_parameters(engine.arange(11, dtype=engine.float32), model.parameters())
    assert model[0].weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert model[1].bias.tolist() == [10.0]
