"""LBFGS against torch.optim.LBFGS: the closure protocol, with and without strong-Wolfe line search."""

from __future__ import annotations

import io

import numpy as np
import pytest
from optim_models import X, Y, engine_params, torch_params

import engine


def closure_for(lib, opt, params, calls):
    w1, b1, w2 = params

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (((lib.tensor(X) @ w1 + b1).tanh() @ w2 - lib.tensor(Y)) ** 2).mean()
        loss.backward()
        return loss

    return closure


OPTIONS = [
    {},
    {"line_search_fn": "strong_wolfe"},
    {"lr": 0.5, "max_iter": 5, "history_size": 3},
    {"max_iter": 7, "history_size": 4, "line_search_fn": "strong_wolfe", "tolerance_change": 1e-12},
    {"max_iter": 30, "max_eval": 12, "line_search_fn": "strong_wolfe"},
]


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
def test_matches_torch_over_several_steps(torch, options):
    ours, theirs = engine_params(), torch_params(torch)
    opt, ref = engine.optim.LBFGS(ours, **options), torch.optim.LBFGS(theirs, **options)
    our_calls, their_calls = [], []
    # NOTE: 2 steps of up to 20 iterations: rounding differences (1e-12 after the first step) grow
    # through the quasi-Newton updates, as between any two BLAS builds.
    for _ in range(2):
        a = opt.step(closure_for(engine, opt, ours, our_calls))
        b = ref.step(closure_for(torch, ref, theirs, their_calls))
        np.testing.assert_allclose(a.item(), b.item(), rtol=1e-6)
    assert len(our_calls) == len(their_calls)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-8)
    mine, want = opt.state[ours[0]], ref.state[theirs[0]]
    assert mine["func_evals"] == want["func_evals"] and mine["n_iter"] == want["n_iter"]
    np.testing.assert_allclose(mine["d"].numpy(), want["d"].numpy(), rtol=1e-5, atol=1e-8)
    assert len(mine["old_dirs"]) == len(want["old_dirs"])
    assert opt.state_dict()["param_groups"] == ref.state_dict()["param_groups"]


def test_it_minimises_a_quadratic_to_tolerance(torch):
    target = np.array([1.0, -2.0, 3.0])
    w = engine.zeros(3, dtype=engine.float64, requires_grad=True)
    opt = engine.optim.LBFGS([w], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((w - engine.tensor(target)) ** 2 * engine.tensor([1.0, 10.0, 100.0])).sum()
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(w.detach().numpy(), target, atol=1e-6)


def test_a_step_without_closure_is_refused(torch):
    opt = engine.optim.LBFGS([engine.zeros(2, requires_grad=True)])
    with pytest.raises(TypeError, match="closure"):
        opt.step()
    with pytest.raises(RuntimeError, match="requires a closure"):
        opt.step(None)


def test_groups_and_unknown_line_searches_are_refused():
    w, v = engine.zeros(2, requires_grad=True), engine.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        engine.optim.LBFGS([{"params": [w]}, {"params": [v]}])
    with pytest.raises(ValueError, match="only 'strong_wolfe'"):
        engine.optim.LBFGS([w], line_search_fn="backtracking")


def test_state_dict_round_trip_continues_identically():
    ours = engine_params()
    opt = engine.optim.LBFGS(ours, max_iter=3, history_size=5)
    for _ in range(2):
        opt.step(closure_for(engine, opt, ours, []))
    buffer = io.BytesIO()
    engine.save({"params": [p.detach() for p in ours], "optimizer": opt.state_dict()}, buffer)
    saved = engine.load(io.BytesIO(buffer.getvalue()))
    resumed = [p.clone().detach().requires_grad_(True) for p in saved["params"]]
    opt2 = engine.optim.LBFGS(resumed, max_iter=3, history_size=5)
    opt2.load_state_dict(saved["optimizer"])
    for _ in range(2):
        opt.step(closure_for(engine, opt, ours, []))
        opt2.step(closure_for(engine, opt2, resumed, []))
    for a, b in zip(ours, resumed, strict=True):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
