"""Helpers for the distributed tests: MPI is required (skip outside CI, fail in CI), ranks via the launcher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = Path(__file__).parent / "scripts"

from services import require  # noqa: E402 - tests/ is on sys.path (tests/conftest.py)


def _has_mpi() -> bool:
    try:
        from mpi4py import MPI  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def mpi():
    require(_has_mpi(), "mpi4py with an MPI is not installed (pip install 'kiln[distributed]')")


def launch(nproc: int, *argv: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    """``python -m engine.distributed.run --standalone --nproc-per-node N argv...`` from the repository root."""
    cmd = [sys.executable, "-m", "engine.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *argv]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def run_ranks(mpi):
    return launch


@pytest.fixture
def scripts():
    return SCRIPTS
