"""Trace each model at batch 4, run it at batches 4 and 7: equal to eager and to PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from jit_models import cnn, gpt_block, lstm_classifier, mlp
from torch_oracle import require_torch

import engine

torch = require_torch()

CASES = {
    "mlp": (lambda lib: mlp(lib.nn), lambda b: np.random.default_rng(b).standard_normal((b, 10))),
    "cnn": (lambda lib: cnn(lib.nn), lambda b: np.random.default_rng(b).standard_normal((b, 3, 8, 8))),
    "lstm": (lstm_classifier, lambda b: np.random.default_rng(b).integers(0, 20, (b, 6))),
    "gpt": (gpt_block, lambda b: np.random.default_rng(b).standard_normal((b, 5, 16))),
}


def _pair(name):
    build, _ = CASES[name]
    engine.manual_seed(0)
    model = build(engine).eval()
    reference = build(torch).eval()
    reference.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    return model, reference


def _inputs(name, batch):
    array = CASES[name][1](batch)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    return engine.tensor(array), torch.tensor(array)


@pytest.mark.parametrize("name", sorted(CASES))
def test_trace_runs_at_a_new_batch_size(name):
    model, reference = _pair(name)
    x4, _ = _inputs(name, 4)
    with engine.no_grad():
        traced = engine.jit.trace(model, (x4,))
        for batch in (4, 7):
            x, tx = _inputs(name, batch)
            got = traced(x)
            np.testing.assert_allclose(got.numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(got.numpy(), reference(tx).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert isinstance(traced, engine.jit.ScriptModule)
    assert traced.state_dict().keys() == model.state_dict().keys()
    assert "def forward(self" in traced.code


def test_traced_module_trains_and_shares_parameters():
    model, _ = _pair("mlp")
    x, _ = _inputs("mlp", 4)
    traced = engine.jit.trace(model, x)
    assert [p is q for p, q in zip(traced.parameters(), model.parameters(), strict=True)] == [True] * 6
    traced(x).sum().backward()
    assert model[0].weight.grad is not None
    assert traced.eval() is traced and not traced.training
