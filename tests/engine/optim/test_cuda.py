"""Every optimizer case on device ``cuda`` (real CuPy, or tests/fake_cupy in CI) gives the CPU parameters, and
under fake_cupy ``step()`` copies nothing back to the host (a sync per step would stall a real GPU)."""

from __future__ import annotations

import numpy as np
import pytest
from optim_models import B1, W1, W2, X, Y, groups
from test_optimizers import CASES, IDS

import engine

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend")]


def _train(name, options, second_group, device, syncs=None):
    params = [engine.tensor(a.copy(), dtype=engine.float64).to(device).requires_grad_() for a in (W1, B1, W2)]
    opt = getattr(engine.optim, name)(groups(params, second_group), **options)
    x, y = engine.tensor(X).to(device), engine.tensor(Y).to(device)
    for k in range(20):
        opt.zero_grad()
        w1, b1, w2 = params
        (((x * (1 + 0.1 * k) @ w1 + b1).tanh() @ w2 - y) ** 2).mean().backward()
        before = syncs.host_syncs if syncs else 0
        opt.step()
        if syncs:
            assert syncs.host_syncs == before, f"{name}.step() copied device data to the host"
    return params, opt


@pytest.mark.parametrize(("name", "options", "second_group"), CASES, ids=IDS)
def test_optimizer_on_cuda_matches_cpu_without_host_syncs(cuda_backend, name, options, second_group):
    stats = getattr(cuda_backend, "_Stats", None)  # only the fake counts host copies
    want, _ = _train(name, options, second_group, "cpu")
    got, opt = _train(name, options, second_group, "cuda", stats)
    for a, b in zip(got, want, strict=True):
        assert a.device.type == "cuda"
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-11)
    for state in opt.state.values():
        for key, value in state.items():
            if isinstance(value, engine.Tensor) and key != "step":
                assert value.device.type == "cuda", f"{name} state {key!r} is on {value.device}"
