"""Engine test helpers: the torch oracle fixture and GPU skipping."""

from __future__ import annotations

import os
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


def pytest_configure(config):
    """KILN_FAKE_CUPY=1: the whole session's CUDA device is tests/fake_cupy (e.g. to run a suite with device="cuda")."""
    if os.environ.get("KILN_FAKE_CUPY") == "1":
        import fake_cupy

        from engine import backend

        backend._use_array_module_for_tests(fake_cupy)


@pytest.fixture(scope="module", params=["cupy", "fake_cupy"])
def cuda_backend(request):
    """Each GPU test twice: on real CuPy (skipped without a GPU) and on tests/fake_cupy, the strict CuPy-shaped
    module over NumPy that lets CI exercise the CUDA code path with no GPU. Yields the module in use."""
    from engine import backend

    if request.param == "cupy":
        if backend._real_cupy() is None:
            pytest.skip("needs CuPy and a CUDA device")
        yield backend._real_cupy()
        return
    import fake_cupy

    previous = backend._use_array_module_for_tests(fake_cupy)
    try:
        yield fake_cupy
    finally:
        backend._use_array_module_for_tests(previous)
