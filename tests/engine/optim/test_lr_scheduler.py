"""Every LR scheduler against torch.optim.lr_scheduler: same learning rates (and momenta) each step."""

from __future__ import annotations

import io
import math

import pytest

import engine


def build(lib, name: str, opt, **kwargs):
    """A scheduler of ``lib`` (engine or torch); composite ones are built from their members."""
    sched = lib.optim.lr_scheduler
    if name == "SequentialLR":
        members = [sched.LinearLR(opt, start_factor=0.1, total_iters=4), sched.CosineAnnealingLR(opt, T_max=10),
                   sched.StepLR(opt, step_size=3, gamma=0.5)]
        return sched.SequentialLR(opt, members, milestones=[5, 12])
    if name == "ChainedScheduler":
        return sched.ChainedScheduler([sched.ConstantLR(opt, factor=0.5, total_iters=3),
                                       sched.ExponentialLR(opt, gamma=0.9)])
    return getattr(sched, name)(opt, **kwargs)


def _half(epoch):
    return 0.5 ** (epoch // 3)


def _decay(epoch):
    return 0.97


CASES = [
    ("StepLR", {"step_size": 4, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [3, 7, 7, 15], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.85}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.001}),
    ("CosineAnnealingWarmRestarts", {"T_0": 3, "T_mult": 2, "eta_min": 0.01}),
    ("CosineAnnealingWarmRestarts", {"T_0": 5}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 25}),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "total_steps": 25, "anneal_strategy": "linear", "three_phase": True}),
    ("LambdaLR", {"lr_lambda": _half}),
    ("MultiplicativeLR", {"lr_lambda": _decay}),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 6}),
    ("ConstantLR", {"factor": 0.5, "total_iters": 4}),
    ("PolynomialLR", {"total_iters": 8, "power": 2.0}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3, "mode": "triangular2"}),
    ("CyclicLR", {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2, "step_size_down": 4, "mode": "exp_range",
                  "gamma": 0.9}),
    ("SequentialLR", {}),
    ("ChainedScheduler", {}),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]


def make_optimizer(lib, kind: str = "SGD"):
    a = lib.zeros(2, requires_grad=True)
    b = lib.zeros(2, requires_grad=True)
    groups = [{"params": [a]}, {"params": [b], "lr": 0.05}]
    if kind == "Adam":
        return lib.optim.Adam(groups, lr=0.1)
    return lib.optim.SGD(groups, lr=0.1, momentum=0.9)


def trace(opt, sched, steps: int) -> list:
    seen = []
    for _ in range(steps):
        opt.step()
        sched.step()
        seen.append((list(sched.get_last_lr()), [g.get("momentum", g.get("betas", (None,))[0])
                                                 for g in opt.param_groups]))
    return seen


def assert_same(got, want):
    for (lrs, moms), (ref_lrs, ref_moms) in zip(got, want, strict=True):
        assert lrs == pytest.approx(ref_lrs, rel=1e-12, abs=1e-15)
        assert moms == pytest.approx(ref_moms, rel=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_learning_rates_match_torch(torch, name, kwargs, kind):
    opt, ref_opt = make_optimizer(engine, kind), make_optimizer(torch, kind)
    sched, ref = build(engine, name, opt, **kwargs), build(torch, name, ref_opt, **kwargs)
    assert sched.get_last_lr() == pytest.approx(ref.get_last_lr())
    assert_same(trace(opt, sched, 22), trace(ref_opt, ref, 22))


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_state_dict_round_trip_mid_run_continues_identically(name, kwargs):
    opt = make_optimizer(engine)
    sched = build(engine, name, opt, **kwargs)
    trace(opt, sched, 9)
    buffer = io.BytesIO()
    engine.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buffer)
    saved = engine.load(io.BytesIO(buffer.getvalue()))
    opt2 = make_optimizer(engine)
    sched2 = build(engine, name, opt2, **kwargs)
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    assert_same(trace(opt2, sched2, 12), trace(opt, sched, 12))


def test_closed_form_epoch_argument_matches_torch(torch):
    opt, ref_opt = make_optimizer(engine), make_optimizer(torch)
    sched = engine.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 5], gamma=0.1)
    ref = torch.optim.lr_scheduler.MultiStepLR(ref_opt, milestones=[2, 5], gamma=0.1)
    opt.step()
    ref_opt.step()
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(6)
    with pytest.warns(UserWarning):
        ref.step(6)
    assert sched.get_last_lr() == pytest.approx(ref.get_last_lr())


def test_warm_restarts_accept_fractional_epochs(torch):
    opt, ref_opt = make_optimizer(engine), make_optimizer(torch)
    sched = engine.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
    ref = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(ref_opt, T_0=2, T_mult=2)
    for i in range(30):
        opt.step()
        ref_opt.step()
        sched.step(i * 0.37)
        ref.step(i * 0.37)
        assert sched.get_last_lr() == pytest.approx(ref.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize("options", [
    {"mode": "min", "patience": 2, "factor": 0.5},
    {"mode": "max", "patience": 1, "threshold_mode": "abs", "threshold": 0.1, "cooldown": 2},
    {"mode": "min", "patience": 0, "min_lr": [0.02, 0.04], "factor": 0.3},
])
def test_reduce_on_plateau_matches_torch(torch, options):
    metrics = [1.0, 0.9, 0.95, 0.94, 0.93, 0.92, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9, 0.85, 0.88, 0.2, 0.3, 0.4, 0.5]
    opt, ref_opt = make_optimizer(engine), make_optimizer(torch)
    sched = engine.optim.lr_scheduler.ReduceLROnPlateau(opt, **options)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, **options)
    for i, value in enumerate(metrics):
        sched.step(value)
        ref.step(value)
        assert sched.get_last_lr() == pytest.approx(ref.get_last_lr()), i
        if i == 8:  # round trip through a checkpoint mid-run
            saved = engine.load(io.BytesIO(_saved(sched.state_dict())))
            sched = engine.optim.lr_scheduler.ReduceLROnPlateau(opt, **options)
            sched.load_state_dict(saved)
    assert math.isinf(engine.optim.lr_scheduler.ReduceLROnPlateau(make_optimizer(engine)).best)


def _saved(state) -> bytes:
    buffer = io.BytesIO()
    engine.save(state, buffer)
    return buffer.getvalue()


def test_stepping_the_scheduler_first_warns_like_torch():
    opt = make_optimizer(engine)
    sched = engine.optim.lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


def test_get_lr_outside_step_warns():
    sched = engine.optim.lr_scheduler.ExponentialLR(make_optimizer(engine), gamma=0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()


def test_resuming_without_initial_lr_is_a_clear_error():
    with pytest.raises(KeyError, match="initial_lr"):
        engine.optim.lr_scheduler.StepLR(make_optimizer(engine), step_size=2, last_epoch=3)


def test_one_cycle_refuses_to_step_past_total_steps():
    opt = make_optimizer(engine)
    sched = engine.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    opt.step()
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched.step()
