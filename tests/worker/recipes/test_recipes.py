"""Every built-in model trains end to end outside Kiln, reports through engine.track, and resumes exactly."""

from __future__ import annotations

import math

import pytest
from recipe_helpers import assert_same, checkpoints, decoded_state, metrics
from safetensors.numpy import load_file

from worker.recipes import RecipeError, run_recipe

TINY = {"epochs": 2, "hidden_size": 16, "layers": 1, "batch_size": 128}
PAIRS = [("mlp", "spirals"), ("mlp", "regression"), ("mlp", "bars"), ("cnn", "digits"), ("cnn", "bars"),
         ("lstm", "digits"), ("lstm", "text"), ("gpt", "text")]


@pytest.mark.parametrize(("model", "dataset"), PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_each_model_trains_end_to_end(model, dataset, local_run):
    session = local_run()
    summary = run_recipe({"model": model, "dataset": dataset, **TINY})

    rows = metrics(session.run_dir)
    steps = [row for row in rows if "samples_per_s" in row]
    epochs = [row for row in rows if "epoch" in row]
    assert steps and all(row["lr"] == 1e-3 and row["samples_per_s"] > 0 for row in steps)
    assert [row["epoch"] for row in epochs] == [1, 2]
    classifies = dataset != "regression"
    for row in epochs:
        assert math.isfinite(row["val_loss"])
        assert ("val_accuracy" in row) == classifies
    assert ("accuracy" in steps[-1]) == classifies
    assert summary["val_loss"] == epochs[-1]["val_loss"]
    assert [row["step"] for row in epochs] == [read_step(p) for p in checkpoints(session.run_dir)]
    assert (session.run_dir / "progress.json").read_text().startswith('{"epoch": 2, "epochs": 2')
    weights = load_file(str(session.run_dir / "artifacts" / "model.safetensors"))
    assert weights and all(math.isfinite(float(w.sum())) for w in weights.values())


def test_a_recipe_learns(local_run):
    local_run()
    summary = run_recipe({"model": "mlp", "dataset": "blobs", "epochs": 3, "optimizer": {"lr": 0.01}})
    assert summary["val_accuracy"] >= 0.95


def test_step_metrics_are_windows_of_the_epoch(local_run):
    session = local_run()
    run_recipe({"model": "mlp", "dataset": "digits", "epochs": 1, "batch_size": 32, "hidden_size": 16})
    steps = [row["step"] for row in metrics(session.run_dir) if "samples_per_s" in row]
    assert steps == [*range(4, 45, 4), 45]  # 45 batches: a log every 4, and the epoch's last


RESUMABLE = [
    {"model": "mlp", "dataset": "spirals", "dropout": 0.2, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
     "scheduler": {"name": "onecycle"}},
    {"model": "cnn", "dataset": "digits", "hidden_size": 8, "dropout": 0.1, "scheduler": {"name": "step"}},
    {"model": "lstm", "dataset": "text", "hidden_size": 16, "layers": 2, "dropout": 0.1,
     "optimizer": {"name": "rmsprop", "momentum": 0.5}, "scheduler": {"name": "exponential", "gamma": 0.5}},
    {"model": "gpt", "dataset": "text", "hidden_size": 16, "dropout": 0.1,
     "optimizer": {"name": "adamw", "weight_decay": 0.1}, "scheduler": {"name": "cosine"}},
]


@pytest.mark.parametrize("recipe", RESUMABLE, ids=[r["model"] for r in RESUMABLE])
def test_resume_equals_uninterrupted(recipe, local_run):
    recipe = {**recipe, "epochs": 3, "batch_size": 64, "layers": recipe.get("layers", 1)}
    whole = local_run()
    run_recipe(recipe)
    first, *_, last = checkpoints(whole.run_dir)

    resumed = local_run(resume=first)  # what a re-queued Kiln run does after a crash in epoch 2
    summary = run_recipe(recipe)

    assert summary["resumed_after_epoch"] == 1
    assert [p.name for p in checkpoints(resumed.run_dir)] == [p.name for p in checkpoints(whole.run_dir)[1:]]
    assert_same(decoded_state(last), decoded_state(checkpoints(resumed.run_dir)[-1]))
    later = [{k: v for k, v in row.items() if k not in ("time", "samples_per_s")} for row in metrics(whole.run_dir)
             if row["step"] > read_step(first)]
    again = [{k: v for k, v in row.items() if k not in ("time", "samples_per_s")} for row in metrics(resumed.run_dir)]
    assert later == again


def test_resuming_a_finished_run_trains_nothing(local_run):
    recipe = {"model": "mlp", "dataset": "blobs", **TINY}
    whole = local_run()
    first = run_recipe(recipe)
    again = local_run(resume=checkpoints(whole.run_dir)[-1])
    summary = run_recipe(recipe)
    assert summary["resumed_after_epoch"] == 2 and summary["val_loss"] == first["val_loss"]
    assert checkpoints(again.run_dir) == []


def read_step(path) -> int:
    return int(path.name[len("step-"):-len(".safetensors")])


def test_a_checkpoint_from_another_recipe_is_refused(local_run):
    whole = local_run()
    run_recipe({"model": "mlp", "dataset": "blobs", **TINY})
    local_run(resume=checkpoints(whole.run_dir)[0])
    with pytest.raises(RecipeError, match="written by a different recipe"):
        run_recipe({"model": "mlp", "dataset": "blobs", **TINY, "hidden_size": 32})
