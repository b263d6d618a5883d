"""`python -m worker.recipes.run` as the job runs it: outside Kiln with a file, inside Kiln from its params."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from webapp.experiments.spec import flat_params, validate_spec

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_module(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    environment.update(PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-m", "worker.recipes.run", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_recipe_file_runs_in_a_local_folder(tmp_path):
    (tmp_path / "recipe.json").write_text(json.dumps({"recipe": {"model": "mlp", "dataset": "blobs", "epochs": 2}}))
    done = run_module(["recipe.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["recipe"]["model"] == "mlp" and summary["val_accuracy"] > 0.5
    (run_dir,) = (tmp_path / "kiln-runs").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["dataset"] == "blobs"
    assert len(list((run_dir / "checkpoints").iterdir())) == 2


def test_inside_kiln_the_recipe_comes_from_the_run_params_and_events_stream(tmp_path):
    spec = validate_spec({"recipe": {"model": "cnn", "dataset": "bars", "epochs": 2, "hidden_size": 8}},
                         has_code=False)
    config, events = tmp_path / ".kiln-config.json", tmp_path / ".kiln-events.jsonl"
    config.write_text(json.dumps(flat_params(spec)))  # what the worker writes for the job
    events.touch()
    done = run_module([], tmp_path, KILN_RUN_DIR=str(tmp_path), KILN_EVENTS=str(events), KILN_CONFIG=str(config))
    assert done.returncode == 0, done.stderr
    kinds = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    assert {"metrics", "progress", "checkpoint", "artifact"} <= set(kinds)
    assert kinds.count("checkpoint") == 2
    assert not (tmp_path / "kiln-runs").exists()


def test_a_senseless_recipe_exits_2_with_the_reason_and_leaves_nothing(tmp_path):
    (tmp_path / "recipe.json").write_text(json.dumps({"model": "cnn", "dataset": "text"}))
    done = run_module(["recipe.json"], tmp_path)
    assert done.returncode == 2
    assert "model 'cnn' can't train on dataset 'text'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "kiln-runs").exists()


def test_an_unreadable_recipe_file_is_reported(tmp_path):
    (tmp_path / "broken.json").write_text("{model: mlp")
    done = run_module(["broken.json"], tmp_path)
    assert done.returncode == 2 and "is not JSON" in done.stderr
    done = run_module(["missing.json"], tmp_path)
    assert done.returncode == 2 and "can't read the recipe file" in done.stderr


def test_without_a_recipe_it_prints_usage_and_leaves_nothing(tmp_path):
    done = run_module([], tmp_path)
    assert done.returncode == 2 and "python -m worker.recipes.run [recipe.json]" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_job_side_imports_no_platform_code(tmp_path):
    probe = ("import sys, worker.recipes.run; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'celery', 'webapp', 'scheduler', "
             "'pydantic', 'kombu'}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
