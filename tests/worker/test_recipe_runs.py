"""A recipe run (no code of its own) executes the built-in recipe runner inside the sandbox."""

from __future__ import annotations

import pytest

from webapp.experiments.models import Artifact, MetricSummary
from webapp.experiments.submit import run_submit
from worker.executor import execute
from worker.limits import JobLimits

from .conftest import ProjectFactory

pytestmark = pytest.mark.slow


def test_a_recipe_run_trains_and_stores_metrics_and_checkpoints(claimed, settings, log_text):
    project = ProjectFactory()
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": 2, "batch_size": 32, "hidden_size": 16}}
    run = claimed(run_submit(user=project.owner_user, project=project, spec=spec).runs[0])
    outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                      limits=JobLimits(wall_seconds=120))
    run.refresh_from_db()
    assert outcome.state == "succeeded", log_text(run)
    keys = set(MetricSummary.objects.filter(run=run).values_list("key", flat=True))
    assert {"loss", "lr"} <= keys, keys
    assert Artifact.objects.filter(run=run, kind="checkpoint").exists()
    assert run.progress.get("epochs") == 2
    _the_logged_onnx_model_runs(run)


def _the_logged_onnx_model_runs(run) -> None:
    """The recipe's final model is a `model` artifact whose ONNX file onnxruntime runs at any batch size."""
    ort = pytest.importorskip("onnxruntime")
    import numpy as np
    from django.core.files.storage import default_storage

    onnx_file = Artifact.objects.get(run=run, kind="model", name="model.onnx")
    assert onnx_file.metadata["signature"]["inputs"][0]["shape"] == ["batch", 2]
    with default_storage.open(onnx_file.storage_path, "rb") as handle:
        session = ort.InferenceSession(handle.read())
    (logits,) = session.run(None, {"input": np.zeros((5, 2), dtype=np.float32)})
    assert logits.shape == (5, 3)
    assert Artifact.objects.filter(run=run, kind="model", name="model.pt").exists()
