"""Mixed precision: autocast dtypes and policy, GradScaler's skip-and-rescale behaviour against torch."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.amp import GradScaler, autocast_state


@pytest.mark.parametrize("dtype", [engine.float16, engine.bfloat16])
def test_matmul_runs_in_the_autocast_dtype_and_grads_stay_float32(dtype):
    x = engine.randn(4, 3, requires_grad=True)
    w = engine.randn(3, 2, requires_grad=True)
    with engine.autocast("cpu", dtype=dtype):
        assert engine.is_autocast_enabled("cpu") and engine.get_autocast_dtype("cpu") == dtype
        y = x @ w
        assert y.dtype == dtype
        assert engine.mm(x, w).dtype == dtype and x.matmul(w).dtype == dtype
        loss = y.float().sum()
    assert not engine.is_autocast_enabled("cpu")
    loss.backward()
    assert x.grad.dtype == engine.float32 and w.grad.dtype == engine.float32
    assert (x @ w).dtype == engine.float32


def test_autocast_values_match_torch(torch):
    a, b = np.random.default_rng(0).normal(size=(2, 5, 16)).astype(np.float32)
    with engine.autocast("cpu", dtype=engine.bfloat16):
        ours = engine.tensor(a) @ engine.tensor(b).t()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        theirs = torch.tensor(a) @ torch.tensor(b).t()
    assert str(theirs.dtype) == "torch.bfloat16" and ours.dtype == engine.bfloat16
    np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=2e-2, atol=2e-2)


def test_policy_lists_cast_down_up_or_leave_alone():
    half = engine.ones(2, dtype=engine.float16)
    full = engine.ones(2)
    ints = engine.ones(2, dtype=engine.int64)
    with engine.autocast("cpu", dtype=engine.float16):
        low, same_int = autocast_state.cast_inputs("linear", full, ints)
        up, untouched = autocast_state.cast_inputs("mse_loss", half, full)
        other, = autocast_state.cast_inputs("relu", half)
    assert low.dtype == engine.float16 and same_int.dtype == engine.int64
    assert up.dtype == engine.float32 and untouched is full
    assert other is half
    assert autocast_state.cast_inputs("linear", full)[0] is full  # autocast off: nothing changes


def test_disabled_region_decorator_and_unsupported_dtype():
    a = engine.ones(2, 2)
    with engine.autocast("cpu", dtype=engine.float16):
        with engine.autocast("cpu", enabled=False):
            assert (a @ a).dtype == engine.float32
        assert (a @ a).dtype == engine.float16

    @engine.autocast("cpu", dtype=engine.bfloat16)
    def forward(x):
        return x @ x

    assert forward(a).dtype == engine.bfloat16 and (a @ a).dtype == engine.float32
    with pytest.warns(UserWarning, match="not supported"):
        region = engine.autocast("cpu", dtype=engine.float64)
    with region:
        assert (a @ a).dtype == engine.float32
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        engine.autocast("tpu")
    assert engine.amp.autocast is engine.autocast


def test_parameters_are_cast_once_per_region():
    w = engine.randn(3, 3, requires_grad=True)
    x = engine.randn(2, 3)
    with engine.autocast("cpu", dtype=engine.float16):
        (x @ w).float().sum().backward()
        (x @ w).float().sum().backward()
        assert len(autocast_state._cache) == 1
    assert not autocast_state._cache
    assert w.grad.dtype == engine.float32


def _scaler_run(lib, scaler, params, opt, steps, inf_at):
    """Train a small least-squares problem; record scale, tracker and parameters after each step."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)
    seen = []
    for k in range(steps):
        opt.zero_grad()
        loss = ((lib.tensor(x) @ params[0] + params[1] - lib.tensor(y)) ** 2).mean()
        scaler.scale(loss).backward()
        if k in inf_at:
            params[0].grad[0, 0] = float("inf") if k % 2 else float("nan")
        scaler.step(opt)
        scaler.update()
        seen.append((scaler.get_scale(), scaler._get_growth_tracker(),
                     [p.detach().numpy().copy() for p in params]))
    return seen


def test_grad_scaler_skips_inf_steps_and_rescales_like_torch(torch):
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(3, 1)).astype(np.float32), np.zeros(1, np.float32)
    options = {"init_scale": 2.0 ** 10, "growth_factor": 2.0, "backoff_factor": 0.25, "growth_interval": 3}
    ours = [engine.tensor(w0, requires_grad=True), engine.tensor(b0, requires_grad=True)]
    theirs = [torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    inf_at = {2, 3, 9}
    got = _scaler_run(engine, GradScaler("cpu", **options), ours, engine.optim.SGD(ours, lr=0.05), 14, inf_at)
    want = _scaler_run(torch, torch.amp.GradScaler("cpu", **options), theirs, torch.optim.SGD(theirs, lr=0.05), 14,
                       inf_at)
    for k, ((scale, tracker, params), (ref_scale, ref_tracker, ref_params)) in enumerate(
            zip(got, want, strict=True)):
        assert (scale, tracker) == (ref_scale, ref_tracker), k
        for a, b in zip(params, ref_params, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert got[2][2][0].tolist() == got[1][2][0].tolist()  # the inf step changed nothing


def test_grad_scaler_unscale_then_clip_then_step():
    w = engine.ones(2, requires_grad=True)
    opt = engine.optim.SGD([w], lr=1.0)
    scaler = GradScaler("cpu", init_scale=8.0)
    scaler.scale((w * 3).sum()).backward()
    assert w.grad.tolist() == [24.0, 24.0]
    scaler.unscale_(opt)
    assert w.grad.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)
    assert w.tolist() == [-2.0, -2.0]
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 8.0


def test_grad_scaler_errors_state_dict_and_disabled_modes():
    w = engine.ones(2, requires_grad=True)
    opt = engine.optim.SGD([w], lr=1.0)
    scaler = GradScaler("cpu", init_scale=4.0, growth_interval=5)
    with pytest.raises(AssertionError, match="_scale is None"):
        scaler.step(opt)
    scaler.scale(w.sum()).backward()
    with pytest.raises(RuntimeError, match="Closure"):
        scaler.step(opt, closure=lambda: None)
    scaler.step(opt)
    scaler.update()
    state = scaler.state_dict()
    assert state == {"scale": 4.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 5,
                     "_growth_tracker": 1}
    other = GradScaler("cpu")
    other.load_state_dict(state)
    assert other.get_scale() == 4.0 and other._get_growth_tracker() == 1
    half = engine.ones(2, dtype=engine.float16, requires_grad=True)
    half_opt = engine.optim.SGD([half], lr=1.0)
    other.scale(half.sum()).backward()
    with pytest.raises(ValueError, match="FP16 gradients"):
        other.unscale_(half_opt)
    other.update(new_scale=16.0)
    assert other.get_scale() == 16.0
    off = GradScaler("cpu", enabled=False)
    loss = w.sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    if not engine.backend.cuda_available():
        with pytest.warns(UserWarning, match="CUDA is not available"):
            assert not GradScaler().is_enabled()


def test_mixed_precision_training_step_end_to_end():
    engine.manual_seed(0)
    w1 = engine.randn(8, 16, requires_grad=True)
    w2 = engine.randn(16, 1, requires_grad=True)
    x, y = engine.randn(32, 8), engine.randn(32, 1)
    opt = engine.optim.Adam([w1, w2], lr=0.01)
    scaler = GradScaler("cpu")
    losses = []
    for _ in range(30):
        opt.zero_grad()
        with engine.autocast("cpu", dtype=engine.bfloat16):
            out = (x @ w1).relu() @ w2
            loss = ((out.float() - y) ** 2).mean()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert w1.dtype == engine.float32 and losses[-1] < losses[0] / 2
