"""A tiny two-layer model built the same way in the engine and in torch (the oracle)."""

from __future__ import annotations

import numpy as np

import engine

RNG = np.random.default_rng(1234)
W1 = RNG.normal(size=(4, 5))
B1 = RNG.normal(size=(5,))
W2 = RNG.normal(size=(5, 3))
X = RNG.normal(size=(8, 4))
Y = RNG.normal(size=(8, 3))


def engine_params() -> list:
    return [engine.tensor(a.copy(), dtype=engine.float64, requires_grad=True) for a in (W1, B1, W2)]


def torch_params(torch) -> list:
    return [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True) for a in (W1, B1, W2)]


def engine_loss(params, step: int):
    w1, b1, w2 = params
    x = engine.tensor(X * (1 + 0.1 * step))
    return (((x @ w1 + b1).tanh() @ w2 - engine.tensor(Y)) ** 2).mean()


def torch_loss(torch, params, step: int):
    w1, b1, w2 = params
    x = torch.tensor(X * (1 + 0.1 * step))
    return (((x @ w1 + b1).tanh() @ w2 - torch.tensor(Y)) ** 2).mean()


def groups(params, per_group: dict | None):
    """All parameters in one group, or two groups where the second has its own options."""
    if per_group is None:
        return params
    return [{"params": params[:2]}, {"params": params[2:], **per_group}]


def as_numpy(params) -> list:
    return [p.detach().numpy().copy() for p in params]
