"""Every optimizer and option against torch.optim: same parameters after 20 steps, state dicts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from optim_models import as_numpy, engine_loss, engine_params, groups, torch_loss, torch_params

import engine

CASES = [
    ("SGD", {"lr": 0.1}, None),
    ("SGD", {"lr": 0.1, "momentum": 0.9}, None),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, {"lr": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "maximize": True, "weight_decay": 0.1}, None),
    ("Adam", {"lr": 0.01}, None),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, None),
    ("Adam", {"lr": 0.01, "amsgrad": True}, {"lr": 0.002, "betas": (0.5, 0.9)}),
    ("Adam", {"lr": 0.01, "maximize": True}, None),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}, None),
    ("AdamW", {"lr": 0.01}, None),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True}, {"weight_decay": 0.0}),
    ("RMSprop", {"lr": 0.01}, None),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.01}, None),
    ("RMSprop", {"lr": 0.01, "centered": True, "maximize": True}, {"lr": 0.001}),
    ("Adagrad", {"lr": 0.1}, None),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1}, None),
    ("Adagrad", {"lr": 0.1, "eps": 1e-6, "maximize": True}, {"lr": 0.05}),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def run_engine(opt, params, steps: range) -> list:
    for k in steps:
        opt.zero_grad()
        engine_loss(params, k).backward()
        opt.step()
    return as_numpy(params)


def run_torch(torch, opt, params, steps: range) -> list:
    for k in steps:
        opt.zero_grad()
        torch_loss(torch, params, k).backward()
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize(("name", "options", "second_group"), CASES, ids=IDS)
def test_matches_torch_over_20_steps(torch, name, options, second_group):
    ours = engine_params()
    theirs = torch_params(torch)
    opt = getattr(engine.optim, name)(groups(ours, second_group), **options)
    ref = getattr(torch.optim, name)(groups(theirs, second_group), **options)
    got = run_engine(opt, ours, range(20))
    want = run_torch(torch, ref, theirs, range(20))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("name", "options", "second_group"), CASES, ids=IDS)
def test_state_dict_layout_matches_torch(torch, name, options, second_group):
    ours = engine_params()
    theirs = torch_params(torch)
    opt = getattr(engine.optim, name)(groups(ours, second_group), **options)
    ref = getattr(torch.optim, name)(groups(theirs, second_group), **options)
    run_engine(opt, ours, range(2))
    run_torch(torch, ref, theirs, range(2))
    mine, want = opt.state_dict(), ref.state_dict()
    assert mine["param_groups"] == want["param_groups"]
    assert list(mine["state"]) == list(want["state"])
    for index, state in want["state"].items():
        assert set(mine["state"][index]) == set(state)
        for key, value in state.items():
            np.testing.assert_allclose(np.asarray(mine["state"][index][key]), value.numpy(), rtol=1e-9)


@pytest.mark.parametrize(("name", "options", "second_group"), CASES, ids=IDS)
def test_state_dict_round_trip_mid_run_continues_identically(name, options, second_group):
    params = engine_params()
    opt = getattr(engine.optim, name)(groups(params, second_group), **options)
    run_engine(opt, params, range(10))
    buffer = io.BytesIO()
    engine.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, buffer)
    saved = engine.load(io.BytesIO(buffer.getvalue()))
    resumed = [p.clone().detach().requires_grad_(True) for p in saved["params"]]
    opt2 = getattr(engine.optim, name)(groups(resumed, second_group), **options)
    opt2.load_state_dict(saved["optimizer"])
    straight = run_engine(opt, params, range(10, 20))
    again = run_engine(opt2, resumed, range(10, 20))
    for a, b in zip(straight, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_kiln_state_dict_loads_into_torch_and_continues(torch, name):
    options = {"lr": 0.01, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.01}
    ours = engine_params()
    opt = getattr(engine.optim, name)(ours, **options)
    run_engine(opt, ours, range(5))
    state = opt.state_dict()
    theirs = [torch.tensor(a, requires_grad=True) for a in as_numpy(ours)]
    ref = getattr(torch.optim, name)(theirs, **options)
    ref.load_state_dict({
        "state": {i: {k: torch.tensor(np.array(v)) for k, v in s.items()} for i, s in state["state"].items()},
        "param_groups": state["param_groups"]})
    got = run_engine(opt, ours, range(5, 10))
    want = run_torch(torch, ref, theirs, range(5, 10))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_float32_adam_matches_torch(torch):
    ours = [p.float().detach().requires_grad_(True) for p in engine_params()]
    theirs = [p.float().detach().requires_grad_(True) for p in torch_params(torch)]
    opt, ref = engine.optim.Adam(ours, lr=0.01), torch.optim.Adam(theirs, lr=0.01)
    for k in range(20):
        opt.zero_grad()
        ref.zero_grad()
        w1, b1, w2 = ours
        ((engine.tensor(np.float32(k) * np.ones((2, 4), np.float32)) @ w1 + b1) @ w2).pow(2).mean().backward()
        t1, tb, t2 = theirs
        ((torch.full((2, 4), float(k)) @ t1 + tb) @ t2).pow(2).mean().backward()
        opt.step()
        ref.step()
    for a, b in zip(as_numpy(ours), theirs, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=2e-5, atol=1e-6)
