"""The fused CUDA kernels equal the NumPy path, forward and backward (the kernel source runs on the fake in CI)."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine.ops import cuda_kernels

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend")]

CASES = {
    "softmax": (lambda x: F.softmax(x, dim=-1), "softmax"),
    "softmax_dim0": (lambda x: F.softmax(x, dim=0), "softmax"),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), "log_softmax"),
    "cross_entropy": (lambda x: F.cross_entropy(x, engine.tensor([1, 0, 3, 2, 4, 0], device=x.device)),
                      "log_softmax"),
    "layer_norm": (lambda x: F.layer_norm(x, (x.shape[-1],)), "standardize"),
    "gelu": (lambda x: F.gelu(x), "gelu"),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), "gelu"),
    "silu": (lambda x: F.silu(x), "silu"),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_kernel_matches_the_numpy_path(name, dtype, monkeypatch):
    fn, kernel = CASES[name]
    calls = []
    real = getattr(cuda_kernels, kernel)
    monkeypatch.setattr(cuda_kernels, kernel, lambda *a: calls.append(1) or real(*a))
    data = np.random.default_rng(0).standard_normal((6, 5)) * 3
    grads = []
    outs = []
    for device in ("cpu", "cuda"):
        x = engine.tensor(data, dtype=dtype, device=device, requires_grad=True)
        y = fn(x)
        weight = engine.tensor(np.linspace(-1, 1, y.numel()).reshape(y.shape), dtype=dtype, device=device)
        (y * weight).sum().backward()
        outs.append(y.detach().cpu().numpy())
        grads.append(x.grad.cpu().numpy())
    assert calls, f"the fused {kernel} kernel was not used on cuda"
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(outs[1], outs[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(grads[1], grads[0], rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("decoupled", [False, True])
def test_fused_adam_step_matches_the_numpy_path(decoupled, monkeypatch):
    calls = []
    real = cuda_kernels.adam_step
    monkeypatch.setattr(cuda_kernels, "adam_step", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(1)
    w0, grads = rng.standard_normal((4, 3)), [rng.standard_normal((4, 3)) for _ in range(3)]
    finals = []
    for device in ("cpu", "cuda"):
        w = engine.nn.Parameter(engine.tensor(w0, dtype="float32", device=device))
        cls = engine.optim.AdamW if decoupled else engine.optim.Adam
        opt = cls([w], lr=0.1, weight_decay=0.05, foreach=True)
        for g in grads:
            w.grad = engine.tensor(g, dtype="float32", device=device)
            opt.step()
        finals.append((w.detach().cpu().numpy(), opt.state[w]["exp_avg_sq"].cpu().numpy()))
    assert calls
    np.testing.assert_allclose(finals[1][0], finals[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(finals[1][1], finals[0][1], rtol=1e-5, atol=1e-7)


def test_double_backward_still_differentiates_through_the_fused_ops():
    for device in ("cpu", "cuda"):
        x = engine.tensor([[0.5, -1.0, 2.0]], device=device, requires_grad=True)
        (g,) = engine.autograd.grad(F.gelu(x).sum() + F.log_softmax(x, 1)[0, 0], x, create_graph=True)
        g.sum().backward()
        if device == "cpu":
            expected = x.grad.numpy().copy()
    np.testing.assert_allclose(x.grad.cpu().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_rms_norm_matches_the_numpy_path(dtype):
    data = np.random.default_rng(2).standard_normal((4, 3, 8))
    outs, grads = [], []
    for device in ("cpu", "cuda"):
        x = engine.tensor(data, dtype=dtype, device=device, requires_grad=True)
        w = engine.tensor(np.linspace(0.5, 1.5, 8), dtype=dtype, device=device, requires_grad=True)
        y = F.rms_norm(x, (8,), w, eps=1e-6)
        (y * y.detach().flip(-1)).sum().backward()
        outs.append(y.detach().cpu().numpy())
        grads.append((x.grad.cpu().numpy(), w.grad.cpu().numpy()))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(outs[1], outs[0], rtol=tol, atol=tol)
    for gpu, cpu in zip(grads[1], grads[0], strict=True):
        np.testing.assert_allclose(gpu, cpu, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("nesterov", [False, True])
def test_fused_sgd_momentum_matches_the_numpy_path(nesterov, monkeypatch):
    calls = []
    real = cuda_kernels.sgd_momentum_step
    monkeypatch.setattr(cuda_kernels, "sgd_momentum_step", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(3)
    w0, grads = rng.standard_normal(7), [rng.standard_normal(7) for _ in range(4)]
    finals = []
    for device in ("cpu", "cuda"):
        w = engine.nn.Parameter(engine.tensor(w0, dtype="float32", device=device))
        opt = engine.optim.SGD([w], lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=0.01, fused=True)
        for g in grads:
            w.grad = engine.tensor(g, dtype="float32", device=device)
            opt.step()
        finals.append(w.detach().cpu().numpy())
    assert len(calls) == 3  # every step after the first (which starts the buffer)
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_dropout_uses_the_generator_s_uniforms_and_backprops_through_its_mask(dtype):
    x = engine.randn(16, 32, device="cuda", dtype=dtype).requires_grad_()
    state = engine.cuda.get_rng_state()
    y = F.dropout(x, p=0.3)
    engine.cuda.set_rng_state(state)
    keep = (engine.rand(16, 32, device="cuda", dtype=dtype) >= 0.3).to(dtype) / 0.7
    np.testing.assert_allclose(y.detach().cpu().numpy(), (x.detach() * keep).cpu().numpy(), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), keep.cpu().numpy(), rtol=1e-6)
    assert 0.6 < float((keep > 0).to(dtype).mean().cpu()) < 0.8


def test_cuda_generator_state_round_trips_and_is_torch_shaped():
    engine.cuda.manual_seed(123)
    assert engine.cuda.initial_seed() == 123
    state = engine.cuda.get_rng_state()
    assert state.dtype is engine.uint8 and state.shape == (16,) and state.device.type == "cpu"
    a = (engine.rand(1000, device="cuda"), engine.randn(10, device="cuda"), engine.randint(0, 5, (9,), device="cuda"),
         engine.randperm(20, device="cuda"))
    engine.cuda.set_rng_state(state)
    b = (engine.rand(1000, device="cuda"), engine.randn(10, device="cuda"), engine.randint(0, 5, (9,), device="cuda"),
         engine.randperm(20, device="cuda"))
    for x, y in zip(a, b, strict=True):
        assert engine.equal(x, y)
    assert engine.get_rng_state().shape != state.shape  # the CPU generator has its own state
    u = a[0].cpu().numpy()
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.05
    assert sorted(a[3].cpu().tolist()) == list(range(20)) and set(a[2].cpu().tolist()) <= set(range(5))
    n = engine.randn(20000, device="cuda").cpu().numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    engine.cuda.manual_seed(124)
    assert not engine.equal(engine.rand(1000, device="cuda"), a[0])
    with pytest.raises(RuntimeError, match="16 bytes"):
        engine.cuda.set_rng_state(engine.zeros(3, dtype=engine.uint8))
    assert [s.tolist() for s in engine.cuda.get_rng_state_all()] == [engine.cuda.get_rng_state().tolist()]


def _no_host_copies(cuda_backend, step, repeats: int = 2):
    if cuda_backend.__name__ != "fake_cupy":
        pytest.skip("the fake counts host copies")
    step()  # first call: lazy state (optimizer moments, generator)
    before = cuda_backend._Stats.host_syncs
    for _ in range(repeats):
        step()
    return cuda_backend._Stats.host_syncs - before


def test_cnn_and_transformer_training_steps_make_no_host_copies(cuda_backend):
    nn = engine.nn
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3), nn.GELU(),
                        nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * 6 * 6, 10)).to("cuda")
    sgd = engine.optim.SGD(cnn.parameters(), lr=0.01, momentum=0.9)
    x, y = engine.randn(4, 3, 16, 16, device="cuda"), engine.randint(0, 10, (4,), device="cuda")

    def cnn_step():
        sgd.zero_grad()
        nn.functional.cross_entropy(cnn(x), y).backward()
        sgd.step()

    # NOTE: one copy per step is cross_entropy's target bounds check (a clear IndexError, where PyTorch's CUDA
    # kernels assert on the device); everything else stays on the device
    assert _no_host_copies(cuda_backend, cnn_step, repeats=2) == 2
    block = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, activation="gelu", batch_first=True,
                                       norm_first=True).to("cuda")
    adamw = engine.optim.AdamW(block.parameters(), lr=1e-3)
    tokens = engine.randn(2, 5, 16, device="cuda")

    def transformer_step():
        adamw.zero_grad()
        block(tokens).pow(2).mean().backward()
        adamw.step()

    assert _no_host_copies(cuda_backend, transformer_step) == 0
