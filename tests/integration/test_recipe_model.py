"""A built-in recipe run on the platform ends with its trained model as `model` artifacts.

Submitted like any run, placed by the real scheduler, trained by the real worker in its sandbox:
the ONNX file runs in onnxruntime at two batch sizes and equals the engine.jit file's outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.datasets import Digits
from webapp.experiments.models import Artifact, RunState
from webapp.experiments.submit import run_submit

pytestmark = pytest.mark.slow


def test_an_lstm_recipe_run_ends_with_an_onnx_model_onnxruntime_runs(kiln):
    ort = pytest.importorskip("onnxruntime")
    spec = {"recipe": {"model": "lstm", "dataset": "digits", "epochs": 1, "batch_size": 64, "hidden_size": 16,
                       "layers": 2}, "resources": {"max_minutes": 5}}
    run = run_submit(user=kiln.project.owner_user, project=kiln.project, spec=spec).runs[0]
    run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED), 240)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
    files = {a.name: a for a in Artifact.objects.filter(run=run, kind="model")}
    assert set(files) == {"model.onnx", "model.pt"}
    signature = files["model.onnx"].metadata["signature"]
    assert signature["inputs"][0]["shape"] == ["batch", 1, 8, 8] and signature["outputs"][0]["shape"] == ["batch", 10]
    stored = kiln.data_dir / "artifacts"
    session = ort.InferenceSession(str(stored / files["model.onnx"].storage_path), providers=["CPUExecutionProvider"])
    traced = engine.jit.load(stored / files["model.pt"].storage_path)
    images = Digits(train=False).data
    for batch in (3, 7):
        x = images[:batch]
        (logits,) = session.run(None, {"input": x.numpy()})
        assert logits.shape == (batch, 10)
        with engine.no_grad():
            np.testing.assert_allclose(logits, traced(x).numpy(), rtol=1e-4, atol=1e-4)
