"""engine.jit.save / load: one safetensors file; a fresh process without the model's class runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from jit_models import gpt_block, lstm_classifier

import engine
from engine.serialization import _read_safetensors


@pytest.mark.parametrize("build, make", [
    (gpt_block, lambda b: engine.randn(b, 5, 16)),
    (lstm_classifier, lambda b: engine.randint(0, 20, (b, 6))),
])
def test_a_fresh_process_that_never_imports_the_class_runs_the_file(tmp_path, build, make):
    engine.manual_seed(0)
    model = build(engine).eval()
    with engine.no_grad():
        traced = engine.jit.trace(model, make(4))
    path = tmp_path / "model.pt"
    engine.jit.save(traced, path)
    x7 = make(7)
    engine.save({"x": x7}, tmp_path / "x.safetensors")
    script = textwrap.dedent(f"""
        import engine
        m = engine.jit.load({str(path)!r})
        x = engine.load({str(tmp_path / 'x.safetensors')!r})["x"]
        with engine.no_grad():
            engine.save({{"y": m(x)}}, {str(tmp_path / 'y.safetensors')!r})
        import sys
        assert "jit_models" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    got = engine.load(tmp_path / "y.safetensors")["y"]
    with engine.no_grad():
        np.testing.assert_allclose(got.numpy(), model(x7).numpy(), rtol=1e-5, atol=1e-5)


def test_the_file_is_safetensors_with_the_graph_as_json(tmp_path):
    model = engine.nn.Sequential(engine.nn.Linear(3, 4), engine.nn.BatchNorm1d(4)).eval()
    traced = engine.jit.trace(model, engine.randn(2, 3))
    engine.jit.save(traced, tmp_path / "m.pt")
    arrays, metadata = _read_safetensors(bytearray((tmp_path / "m.pt").read_bytes()))
    assert {"0.weight", "0.bias", "1.running_mean"} <= {k.split("#")[0] for k in arrays}
    record = json.loads(metadata["kiln.tree"])["engine.jit"]
    assert record["version"] == 1 and isinstance(json.loads(record["graph"]), list)
    loaded = engine.jit.load(tmp_path / "m.pt")
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert isinstance(loaded.parameters().__next__(), engine.nn.Parameter)
    assert not loaded.training
    x = engine.randn(5, 3)
    np.testing.assert_allclose(loaded(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)


def test_a_newer_format_version_is_refused_clearly(tmp_path):
    traced = engine.jit.trace(lambda x: x.relu() * 2, engine.randn(3))
    engine.jit.save(traced, tmp_path / "f.pt")
    tree = engine.load(tmp_path / "f.pt")
    tree["engine.jit"]["version"] = 99
    engine.save(tree, tmp_path / "newer.pt")
    with pytest.raises(RuntimeError, match="format version 99, newer than this engine reads"):
        engine.jit.load(tmp_path / "newer.pt")
    engine.save({"w": engine.ones(2)}, tmp_path / "plain.pt")
    with pytest.raises(RuntimeError, match=r"not an engine\.jit file"):
        engine.jit.load(tmp_path / "plain.pt")


def test_an_unknown_op_in_the_file_is_named(tmp_path):
    traced = engine.jit.trace(lambda x: x.relu(), engine.randn(3))
    engine.jit.save(traced, tmp_path / "f.pt")
    tree = engine.load(tmp_path / "f.pt")
    tree["engine.jit"]["graph"] = tree["engine.jit"]["graph"].replace("engine.relu", "engine.frobnicate")
    engine.save(tree, tmp_path / "bad.pt")
    with pytest.raises(RuntimeError, match=r"unknown op 'engine\.frobnicate'"):
        engine.jit.load(tmp_path / "bad.pt")
