"""The GPU check script's non-GPU parts: --dry-run probes, collects and writes the one JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("device_check.sh")


@pytest.mark.slow
def test_dry_run_writes_the_summary(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable,
           "DEVICE_CHECK_TESTS": "tests/engine/test_amp_cuda.py"}
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "device_check.json").read_text())
    assert summary["ok"] and summary["dry_run"]
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["environment"]["status"] == "passed" and steps["pytest_gpu_ops"]["status"] == "passed"
    assert "test_amp_cuda.py" in steps["pytest_gpu_ops"]["log_tail"] or "collected" in \
        steps["pytest_gpu_ops"]["log_tail"]
    assert summary["environment"]["packages"]["numpy"] != "missing"
    assert "pytest_gpu_ops" in summary["pytest"]
