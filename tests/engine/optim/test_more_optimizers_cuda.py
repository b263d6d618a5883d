"""The new optimizers on device ``cuda`` (real CuPy, or tests/fake_cupy in CI) give the CPU parameters,
with their per-element state on the device; and checkpoints in PyTorch's format keep the device."""

from __future__ import annotations

import io

import numpy as np
import pytest
from optim_models import B1, W1, W2, X, Y, groups
from test_more_optimizers import CASES, IDS

import engine

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend")]

EXTRA = [("Muon", {"lr": 0.02}, None), ("LBFGS", {"line_search_fn": "strong_wolfe", "max_iter": 5}, None),
         ("LBFGS", {"max_iter": 4, "history_size": 2}, None)]


def _train(name, options, second_group, device):
    params = [engine.tensor(a.copy(), dtype=engine.float64).to(device).requires_grad_() for a in (W1, B1, W2)]
    trained = [params[0], params[2]] if name == "Muon" else params
    opt = getattr(engine.optim, name)(groups(trained, second_group), **options)
    x, y = engine.tensor(X).to(device), engine.tensor(Y).to(device)
    for k in range(6):
        def closure(k=k):
            opt.zero_grad()
            w1, b1, w2 = params
            loss = (((x * (1 + 0.1 * k) @ w1 + b1).tanh() @ w2 - y) ** 2).mean()
            loss.backward()
            return loss

        opt.step(closure)
    return params, opt


@pytest.mark.parametrize(("name", "options", "second_group"), CASES + EXTRA,
                         ids=IDS + [f"{n}-extra{i}" for i, (n, _, _) in enumerate(EXTRA)])
def test_new_optimizers_on_cuda_match_cpu(name, options, second_group):
    want, _ = _train(name, options, second_group, "cpu")
    got, opt = _train(name, options, second_group, "cuda")
    for a, b in zip(got, want, strict=True):
        assert a.device.type == "cuda"
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-11)
    for p, state in opt.state.items():
        for key, value in state.items():
            if isinstance(value, engine.Tensor) and value.shape == p.shape:
                assert value.device.type == "cuda", f"{name} state {key!r} is on {value.device}"


def test_a_cuda_checkpoint_in_torch_format_round_trips_on_the_device():
    state = {"w": engine.arange(6.0).reshape(2, 3).to("cuda"), "b": engine.ones(2).to("cuda")}
    buffer = io.BytesIO()
    engine.save(state, buffer, format="torch")
    loaded = engine.load(io.BytesIO(buffer.getvalue()))
    assert loaded["w"].device.type == "cuda" and loaded["w"].cpu().tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    on_cpu = engine.load(io.BytesIO(buffer.getvalue()), map_location="cpu")
    assert on_cpu["b"].device.type == "cpu" and on_cpu["b"].tolist() == [1.0, 1.0]
