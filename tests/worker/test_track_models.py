"""engine.track.log_model: the traced model as NAME.pt and NAME.onnx, locally and as `model` artifacts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.track.session import Session
from webapp.experiments.models import Artifact
from worker.events import EventIngestor, EventReader

SIGNATURE = {"inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 16]}],
             "outputs": [{"name": "output", "dtype": "float32", "shape": ["batch", 3]}]}


def _mlp():
    engine.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_outside_kiln_log_model_writes_a_jit_file_and_an_onnx_file_with_a_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _mlp()
    session = Session.from_environment({}, root=tmp_path / "kiln-runs")
    paths = session.log_model(model.train(), (engine.randn(4, 16),), "mlp", ("engine", "onnx"))
    session.close()
    assert model.training  # log_model traces in eval mode and puts the model back
    assert {k: p.name for k, p in paths.items()} == {"engine": "mlp.pt", "onnx": "mlp.onnx"}
    assert paths["onnx"].parent == session.run_dir / "models"
    meta = json.loads((session.run_dir / "models" / "mlp.onnx.json").read_text())
    assert meta == {"model": "mlp", "format": "onnx", "signature": SIGNATURE}
    x = np.random.default_rng(1).standard_normal((7, 16)).astype(np.float32)
    with engine.no_grad():
        expected = model.eval()(engine.tensor(x)).numpy()
    got = ort.InferenceSession(str(paths["onnx"])).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.save(tmp_path / "x.npy", x)
    script = ("import json, sys, numpy as np, engine\n"  # a process that never sees the model's class
              "m = engine.jit.load(sys.argv[1])\n"
              "print(json.dumps(m(engine.tensor(np.load(sys.argv[2]))).detach().numpy().tolist()))\n")
    done = subprocess.run([sys.executable, "-c", script, str(paths["engine"]), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout), dtype=np.float32), expected, atol=1e-5)


def test_onnx_without_the_onnx_package_names_the_extra(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec  # an environment without the onnx package
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "onnx" else real_find_spec(name, *a))
    session = Session.from_environment({}, root=tmp_path)
    with pytest.raises(ImportError, match=r"pip install 'kiln\[onnx\]'"):
        session.log_model(_mlp(), engine.randn(2, 16), "model", ("engine", "onnx"))
    assert set(session.log_model(_mlp(), engine.randn(2, 16), "model", ("engine",))) == {"engine"}
    with pytest.raises(ValueError, match="formats must be some of"):
        session.log_model(_mlp(), engine.randn(2, 16), "model", ("tflite",))


def test_inside_kiln_model_events_become_model_artifacts_with_their_signature(submit_code, tmp_path):
    pytest.importorskip("onnx")
    run = submit_code("print('hi')")
    env = {"KILN_RUN_DIR": str(tmp_path), "KILN_EVENTS": str(tmp_path / "events")}
    session = Session.from_environment(env)
    session.log_model(_mlp(), (engine.randn(4, 16),), "model", ("engine", "onnx"))
    session.close()
    events, problems = EventReader(tmp_path / "events").read()
    assert [e["type"] for e in events] == ["model", "model"] and problems == []
    notes: list[str] = []
    events.append({"type": "model", "name": "bad.onnx", "path": "models/model.onnx", "time": 1, "metadata": {}})
    EventIngestor(run.id, tmp_path, notes.append).ingest(events)
    rows = {a.name: a for a in Artifact.objects.filter(run=run)}
    assert set(rows) == {"model.pt", "model.onnx"} and len(notes) == 1 and "malformed model event" in notes[0]
    assert {a.kind for a in rows.values()} == {"model"}
    assert rows["model.onnx"].metadata == {"model": "model", "format": "onnx", "signature": SIGNATURE}
    assert rows["model.pt"].metadata["format"] == "engine"
    assert rows["model.onnx"].size == (tmp_path / "models" / "model.onnx").stat().st_size


def test_a_recipe_whose_model_wont_export_to_onnx_still_logs_the_engine_file(tmp_path, monkeypatch, capsys):
    from engine import track
    from worker.recipes.config import parse_recipe
    from worker.recipes.data import build_task
    from worker.recipes.train import _log_final_model

    def refuse(*args, **kwargs):
        raise NotImplementedError("Exporting the operator 'engine.arange' to ONNX is not supported")

    monkeypatch.setattr(engine.onnx, "export", refuse)
    monkeypatch.setattr(track, "_session", None)  # restored afterwards: other tests keep their session
    track.init(dir=tmp_path)
    try:
        _log_final_model(_mlp_for_blobs(), build_task(parse_recipe({"model": "mlp", "dataset": "blobs"})))
        models = track.run_dir() / "models"
    finally:
        track._current().close()
    assert sorted(p.name for p in models.iterdir()) == ["model.pt", "model.pt.json"]
    err = capsys.readouterr().err
    assert "could not be logged as engine and onnx: Exporting the operator 'engine.arange'" in err
    assert "logged the model as model.pt" in err


def _mlp_for_blobs():
    engine.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
