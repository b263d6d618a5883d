"""engine.export.export: an ExportedProgram sharing the trace's capture, with Dim-marked dynamic shapes."""

from __future__ import annotations

import numpy as np
import pytest
from jit_models import gpt_block

import engine


def test_export_with_a_dynamic_batch_runs_at_other_batches():
    engine.manual_seed(0)
    model = gpt_block(engine).eval()
    batch = engine.export.Dim("batch", min=1, max=64)
    ep = engine.export.export(model, (engine.randn(4, 5, 16),), dynamic_shapes={"x": {0: batch}})
    assert isinstance(ep, engine.export.ExportedProgram)
    assert ep.graph is ep.graph_module.graph and ep.state_dict.keys() == model.state_dict().keys()
    x = engine.randn(7, 5, 16)
    with engine.no_grad():
        np.testing.assert_allclose(ep.module()(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ep(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match=r"Expected input at \*args\[0\]\.shape\[1\] to be equal to 5, but got 6"):
        ep.module()(engine.randn(7, 6, 16))
    with pytest.raises(RuntimeError, match=r"shape\[0\] to be <= 64, but got 65"):
        ep.module()(engine.randn(65, 5, 16))


def test_export_without_dynamic_shapes_is_static():
    model = engine.nn.Linear(3, 2)
    ep = engine.export.export(model, (engine.randn(4, 3),))
    assert ep.module()(engine.randn(4, 3)).shape == (4, 2)
    with pytest.raises(RuntimeError, match="to be equal to 4, but got 7"):
        ep.module()(engine.randn(7, 3))
    ep = engine.export.export(model, (engine.randn(4, 3),), dynamic_shapes=({0: engine.export.Dim.AUTO},))
    assert ep.module()(engine.randn(7, 3)).shape == (7, 2)
    assert "engine.nn.functional.linear" in str(ep)
    signature = ep.graph_signature
    assert signature.user_inputs == ["input"] and signature.parameters == ["weight", "bias"]
    assert len(ep.graph.find_nodes(op="call_function")) == 1


def test_save_and_load_keep_the_program_and_its_dynamic_dims(tmp_path):
    model = engine.nn.Sequential(engine.nn.Linear(3, 4), engine.nn.Tanh())
    batch = engine.export.Dim("batch", max=10)
    ep = engine.export.export(model, (engine.randn(4, 3),), dynamic_shapes=({0: batch},))
    engine.export.save(ep, tmp_path / "ep.pt2")
    loaded = engine.export.load(tmp_path / "ep.pt2")
    x = engine.randn(7, 3)
    np.testing.assert_allclose(loaded.module()(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="to be <= 10, but got 11"):
        loaded.module()(engine.randn(11, 3))
    assert loaded.state_dict.keys() == model.state_dict().keys()
