"""Engine test helpers: the torch oracle fixture and GPU skipping."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from torch_oracle import require_torch


@pytest.fixture(scope="session")
def torch():
    """The torch module (skips outside CI when it is missing; fails in CI)."""
    return require_torch()


@pytest.fixture(autouse=True)
def _seeded():
    """Each test starts from the same engine RNG state."""
    import engine

    engine.manual_seed(0)
