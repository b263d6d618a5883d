"""optim.swa_utils against torch: AveragedModel (SWA, EMA, avg_fn, use_buffers), SWALR, update_bn."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import nn

RNG = np.random.default_rng(7)
WEIGHTS = [RNG.standard_normal(s) for s in [(6, 3), (6,), (6,), (6,), (2, 6), (2,)]]
BATCHES = [RNG.standard_normal((8, 3)) for _ in range(4)]


def make(lib, torch_like: bool):
    """The same Linear-BatchNorm-Linear model in either library, with fixed float64 weights."""
    mod = lib.nn
    model = mod.Sequential(mod.Linear(3, 6), mod.BatchNorm1d(6), mod.ReLU(), mod.Linear(6, 2)).double()
    with lib.no_grad():
        for p, w in zip(model.parameters(), WEIGHTS, strict=True):
            p.copy_(lib.tensor(w))
    return model


def train_steps(lib, model, opt, n: int, start: int = 0) -> None:
    for k in range(start, start + n):
        opt.zero_grad()
        out = model(lib.tensor(BATCHES[k % len(BATCHES)] * (1 + 0.1 * k)))
        (out ** 2).mean().backward()
        opt.step()


def averaged_run(lib, make_averaged, steps: int = 5):
    model = make(lib, lib is not engine)
    averaged = make_averaged(lib, model)
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    for k in range(steps):
        train_steps(lib, model, opt, 1, k)
        averaged.update_parameters(model)
    return averaged


def state(module) -> dict:
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


AVERAGERS = {
    "swa": lambda lib, m: lib.optim.swa_utils.AveragedModel(m),
    "ema": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, multi_avg_fn=lib.optim.swa_utils.get_ema_multi_avg_fn(0.9)),
    "ema-avg_fn": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, avg_fn=lib.optim.swa_utils.get_ema_avg_fn(0.8)),
    "swa-multi": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, multi_avg_fn=lib.optim.swa_utils.get_swa_multi_avg_fn()),
    "custom-avg_fn": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, avg_fn=lambda avg, cur, n: 0.5 * avg + 0.5 * cur),
    "ema-buffers": lambda lib, m: lib.optim.swa_utils.AveragedModel(
        m, multi_avg_fn=lib.optim.swa_utils.get_ema_multi_avg_fn(0.7), use_buffers=True),
    "swa-buffers": lambda lib, m: lib.optim.swa_utils.AveragedModel(m, use_buffers=True),
}


@pytest.mark.parametrize("kind", list(AVERAGERS))
def test_averaged_model_matches_torch(torch, kind):
    ours = averaged_run(engine, AVERAGERS[kind])
    theirs = averaged_run(torch, AVERAGERS[kind])
    mine, want = state(ours), state(theirs)
    assert list(mine) == list(want)
    for key in want:
        np.testing.assert_allclose(mine[key], want[key], rtol=1e-7, atol=1e-10, err_msg=key)
    assert int(ours.n_averaged) == 5
    x = BATCHES[0]
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(engine.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-7)


def test_averaged_model_refuses_two_averaging_functions():
    fn = engine.optim.swa_utils.get_swa_avg_fn()
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        engine.optim.swa_utils.AveragedModel(nn.Linear(2, 2), avg_fn=fn, multi_avg_fn=lambda *a: None)


@pytest.mark.parametrize("decay", [-0.1, 1.5])
def test_bad_ema_decay_is_refused(decay):
    with pytest.raises(ValueError, match="Invalid decay value"):
        engine.optim.swa_utils.get_ema_multi_avg_fn(decay)
    with pytest.raises(ValueError, match="Invalid decay value"):
        engine.optim.swa_utils.get_ema_avg_fn(decay)


def test_update_bn_matches_torch(torch):
    ours, theirs = make(engine, False), make(torch, True)
    for lib, model in ((engine, ours), (torch, theirs)):
        model.eval()
        loader = [(lib.tensor(b), lib.tensor(b[:, :2])) for b in BATCHES]
        lib.optim.swa_utils.update_bn(loader, model)
        assert not model.training
    mine, want = state(ours), state(theirs)
    for key in want:
        np.testing.assert_allclose(mine[key], want[key], rtol=1e-9, err_msg=key)
    assert ours[1].momentum == theirs[1].momentum == 0.1


def test_update_bn_without_batchnorm_leaves_the_model_alone():
    model = nn.Linear(3, 2)
    calls = []
    engine.optim.swa_utils.update_bn([calls.append(1) or engine.zeros(1, 3)], model)
    assert model.training


@pytest.mark.parametrize(("options", "epochs"), [
    ({"swa_lr": 0.05}, 14),
    ({"swa_lr": 0.02, "anneal_epochs": 3, "anneal_strategy": "linear"}, 6),
    ({"swa_lr": [0.05, 0.01], "anneal_epochs": 0}, 4),
])
def test_swalr_matches_torch(torch, options, epochs):
    def lrs(lib):
        params = [lib.zeros(1, requires_grad=True), lib.zeros(1, requires_grad=True)]
        opt = lib.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.5)
        sched = lib.optim.swa_utils.SWALR(opt, **options)
        seen = [sched.get_last_lr()]
        for _ in range(epochs):
            opt.step()
            sched.step()
            seen.append(sched.get_last_lr())
        return seen, sched

    mine, sched = lrs(engine)
    want, ref = lrs(torch)
    np.testing.assert_allclose(np.array(mine), np.array(want), rtol=1e-12)
    saved = sched.state_dict()
    assert set(saved) == set(ref.state_dict())
    sched.load_state_dict(saved)
    assert sched.anneal_func(0.5) == ref.anneal_func(0.5)


def test_swalr_refuses_bad_options(torch):
    opt = engine.optim.SGD([engine.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        engine.optim.swa_utils.SWALR(opt, swa_lr=0.1, anneal_strategy="exp")
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0"):
        engine.optim.swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=-1)
