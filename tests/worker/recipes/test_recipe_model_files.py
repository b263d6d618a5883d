"""Every built-in recipe's model is logged in both formats, and onnxruntime runs its ONNX file.

The model is built (untrained) exactly as the recipe runner builds it, then written by the same
``write_model`` behind ``track.log_model``: the ONNX file must equal the engine at two batch sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.track.models import write_model
from worker.recipes.config import MODEL_DATASETS, parse_recipe
from worker.recipes.data import build_task
from worker.recipes.models import build_model

ort = pytest.importorskip("onnxruntime")
PAIRS = [(model, dataset) for model, datasets in MODEL_DATASETS.items() for dataset in datasets]


@pytest.mark.parametrize("model_name, dataset", PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_the_recipe_model_logs_as_engine_and_onnx(tmp_path, model_name, dataset):
    engine.manual_seed(0)
    recipe = parse_recipe({"model": model_name, "dataset": dataset, "hidden_size": 16, "layers": 2,
                           "dropout": 0.1})
    task = build_task(recipe)
    model = build_model(recipe, task)
    example = engine.stack([task.val[i][0] for i in range(2)])
    paths, signature = write_model(tmp_path, model, (example,), name="model", formats=("engine", "onnx"))
    assert sorted(p.name for p in paths.values()) == ["model.onnx", "model.pt"]
    assert signature["inputs"][0]["shape"][0] == "batch"
    session = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    loaded = engine.jit.load(paths["engine"])
    model.eval()
    for batch in (3, 5):
        x = engine.stack([task.val[i][0] for i in range(batch)])
        with engine.no_grad():
            expected = model(x).numpy()
            np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-5, atol=1e-6)
        (got,) = session.run(None, {"input": x.numpy()})
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
