"""A compiled module's backward with create_graph=True (gradient penalties) equals eager's, to second order."""

from __future__ import annotations

import numpy as np

import engine
from engine import nn


def _critic():
    engine.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 1)).double()


def _penalty_grads(model, call, x):
    mixed = engine.tensor(x, requires_grad=True)
    (g,) = engine.autograd.grad(call(mixed).sum(), mixed, create_graph=True)
    penalty = (g.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
    model.zero_grad()
    penalty.backward()
    return g.detach().numpy(), [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]


def test_a_gradient_penalty_through_a_compiled_critic_trains_it_as_eager_does():
    eager_model, compiled_model = _critic(), _critic()
    compiled = engine.compile(compiled_model)
    for seed in range(3):  # the first call captures; later ones replay the compiled program
        x = np.random.default_rng(seed).normal(size=(2, 1, 8, 8))
        g_eager, p_eager = _penalty_grads(eager_model, eager_model, x)
        g_compiled, p_compiled = _penalty_grads(compiled_model, compiled, x)
        np.testing.assert_allclose(g_compiled, g_eager, atol=1e-12)
        assert [a is None for a in p_compiled] == [b is None for b in p_eager]
        assert p_eager[0] is not None and p_eager[2] is not None  # the weights get second-order gradients
        assert p_eager[1] is not None and not p_eager[1].any()  # the conv bias torch's zeros (through LeakyReLU)
        for a, b in zip(p_compiled, p_eager, strict=True):
            if b is not None:
                np.testing.assert_allclose(a, b, atol=1e-12)
