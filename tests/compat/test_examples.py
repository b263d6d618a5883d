"""The examples run as users run them (a subprocess, a fresh folder) and reach their advertised accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from compat_runner import REPO_ROOT, script_env

EXAMPLES = REPO_ROOT / "examples"


def run_example(name: str, args: list[str], workdir: Path, timeout: float = 600) -> dict:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=workdir, env=script_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-4000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    run_dir = Path(result.get("run_dir") or next((workdir / "kiln-runs").iterdir()))
    assert (run_dir / "metrics.jsonl").read_text().strip(), "the example logged no metrics through engine.track"
    return result


@pytest.mark.slow
def test_mlp_digits_reaches_97_percent(tmp_path):
    result = run_example("mlp_digits.py", [], tmp_path)
    assert result["test_accuracy"] >= 0.97, result


@pytest.mark.slow
def test_cnn_digits_reaches_98_percent(tmp_path):
    result = run_example("cnn_digits.py", [], tmp_path)
    assert result["test_accuracy"] >= 0.98, result


@pytest.mark.slow
def test_lstm_char_lm_learns_something(tmp_path):
    result = run_example("lstm_char_lm.py", ["--epochs", "2", "--hidden", "64"], tmp_path)
    assert result["val_loss"] < 3.5, result  # uniform guessing over ~70 characters is ln(70) = 4.25
    assert result["sample"].startswith("The ")


@pytest.mark.slow
def test_gpt_char_learns_something(tmp_path):
    result = run_example("gpt_char.py", ["--steps", "60", "--warmup", "10", "--layers", "1"], tmp_path)
    assert result["val_loss"] < 3.5, result
    assert result["sample"].startswith("The ")
