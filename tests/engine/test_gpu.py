"""The same ops on CUDA give the CPU results: on real CuPy (skipped without a GPU) and on tests/fake_cupy."""

from __future__ import annotations

import numpy as np
import pytest
from op_table import OPS
from test_op_table import _build, _draw, _run

import engine

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend")]


def _to_cuda(tensors):
    out = []
    for t in tensors:
        moved = t.detach().cuda()
        out.append(moved.requires_grad_(t.requires_grad) if t.is_floating_point() else moved)
    return out


@pytest.mark.parametrize("case", OPS, ids=lambda c: c.name)
def test_op_on_cuda_matches_cpu(case):
    arrays = _draw(case)
    cpu_inputs, _ = _build(engine, case, arrays, "float32", noncontiguous=False)
    gpu_inputs = _to_cuda(cpu_inputs)
    cpu_outs = _run(engine, case, cpu_inputs)
    gpu_outs = _run(engine, case, gpu_inputs)
    for c, g in zip(cpu_outs, gpu_outs, strict=True):
        assert g.device.type == "cuda" and g.dtype is c.dtype
        np.testing.assert_allclose(g.detach().cpu().numpy(), c.detach().numpy(), rtol=1e-4, atol=1e-5)
    if not case.differentiable:
        return
    for outs in (cpu_outs, gpu_outs):
        floats = [o for o in outs if o.requires_grad]
        engine.autograd.backward(floats, [engine.ones_like(o) for o in floats])
    for c, g in zip(cpu_inputs, gpu_inputs, strict=True):
        if c.requires_grad and c.grad is not None:
            np.testing.assert_allclose(g.grad.cpu().numpy(), c.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_round_trip_and_device_reporting():
    x = engine.arange(6.0).reshape(2, 3)
    y = x.cuda()
    assert y.device == engine.device("cuda:0") and y.is_cuda
    assert engine.equal(y.cpu(), x)
    assert "device='cuda:0'" in repr(y)
    with pytest.raises(TypeError, match="cpu"):
        y.numpy()


def test_mixing_cpu_and_cuda_tensors_raises():
    with pytest.raises(RuntimeError, match="same device"):
        engine.ones(2) + engine.ones(2, device="cuda")
    assert (engine.ones(2, device="cuda") * engine.tensor(2.0)).device.type == "cuda"


def test_factories_and_random_on_cuda():
    engine.cuda.manual_seed(0)
    a = engine.randn(4, 4, device="cuda")
    engine.cuda.manual_seed(0)
    b = engine.randn(4, 4, device="cuda")
    assert engine.equal(a, b)
    assert engine.zeros(3, device="cuda").device.type == "cuda"
    engine.cuda.synchronize()
    assert engine.cuda.device_count() >= 1


def test_training_step_on_cuda_matches_cpu():
    results = []
    for device in ("cpu", "cuda"):
        engine.manual_seed(0)
        w = engine.randn(5, 3).to(device).requires_grad_()
        x = engine.randn(8, 5).to(device)
        loss = engine.log_softmax(x @ w, dim=1).mean()
        loss.backward()
        results.append(w.grad.cpu().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-6)
