"""Mixed precision on device ``cuda`` (real CuPy, or tests/fake_cupy in CI): autocast casts CUDA tensors and
GradScaler skips, rescales and trains as on CPU, with no host copy inside ``unscale_``."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.amp import GradScaler

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend")]


@pytest.mark.parametrize("dtype", [engine.float16, engine.bfloat16])
def test_cuda_autocast_casts_matmul_and_leaves_cpu_alone(dtype):
    x = engine.randn(4, 3, device="cuda", requires_grad=True)
    w = engine.randn(3, 2, device="cuda", requires_grad=True)
    cpu = engine.randn(4, 3)
    with engine.autocast("cuda", dtype=dtype):
        assert engine.is_autocast_enabled("cuda") and not engine.is_autocast_enabled("cpu")
        y = x @ w
        assert y.dtype == dtype and y.device.type == "cuda"
        assert (cpu @ cpu.t()).dtype == engine.float32
        loss = y.float().sum()
    loss.backward()
    assert x.grad.dtype == engine.float32 and x.grad.device.type == "cuda"
    want = x.detach().cpu().to(dtype) @ w.detach().cpu().to(dtype)
    np.testing.assert_allclose(y.detach().cpu().float().numpy(), want.float().numpy(), rtol=1e-2, atol=1e-2)


def _scaler_steps(device, inf_at, stats=None):
    rng = np.random.default_rng(1)
    w = engine.tensor(rng.normal(size=(3, 1)).astype(np.float32)).to(device).requires_grad_()
    b = engine.zeros(1, device=device, requires_grad=True)
    opt = engine.optim.SGD([w, b], lr=0.05)
    scaler = GradScaler(device, init_scale=2.0 ** 10, growth_factor=2.0, backoff_factor=0.25, growth_interval=3)
    x = engine.tensor(rng.normal(size=(8, 3)).astype(np.float32)).to(device)
    history = []
    for k in range(10):
        opt.zero_grad()
        loss = ((x @ w + b) ** 2).mean() * (float("inf") if k in inf_at else 1.0)
        scaler.scale(loss).backward()
        before = stats.host_syncs if stats else 0
        scaler.unscale_(opt)
        if stats:
            assert stats.host_syncs == before, "GradScaler.unscale_ copied device data to the host"
        scaler.step(opt)
        scaler.update()
        history.append((scaler.get_scale(), w.detach().cpu().numpy().copy()))
    return history


def test_cuda_grad_scaler_matches_cpu(cuda_backend):
    got = _scaler_steps("cuda", {2, 3, 7}, getattr(cuda_backend, "_Stats", None))
    want = _scaler_steps("cpu", {2, 3, 7})
    for (scale, w), (ref_scale, ref_w) in zip(got, want, strict=True):
        assert scale == ref_scale
        np.testing.assert_allclose(w, ref_w, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [engine.float16, engine.bfloat16])
def test_cuda_mixed_precision_training_step(dtype):
    engine.manual_seed(0)
    w1 = engine.randn(8, 16, device="cuda", requires_grad=True)
    w2 = engine.randn(16, 1, device="cuda", requires_grad=True)
    x, y = engine.randn(32, 8, device="cuda"), engine.randn(32, 1, device="cuda")
    opt = engine.optim.Adam([w1, w2], lr=0.01)
    scaler = GradScaler("cuda")
    losses = []
    for _ in range(30):
        opt.zero_grad()
        with engine.autocast("cuda", dtype=dtype):
            loss = ((((x @ w1).relu() @ w2).float() - y) ** 2).mean()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert w1.dtype == engine.float32 and w1.device.type == "cuda" and losses[-1] < losses[0] / 2
