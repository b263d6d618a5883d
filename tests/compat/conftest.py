"""Compatibility tests: ordinary PyTorch scripts, run under PyTorch and under the engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))

from torch_oracle import require_torch


@pytest.fixture(scope="session")
def torch_available():
    """PyTorch is the oracle: skipped outside CI when it is missing, a failure in CI."""
    return require_torch()
