"""PyTorch as the test oracle: required in CI, skipped with a clear reason elsewhere."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_torch():
    """Import torch; in CI a missing torch fails the run instead of skipping it."""
    try:
        import torch
    except ImportError:
        if in_ci():
            pytest.fail("CI=true but torch (the engine's test oracle) is not installed: pip install -e '.[dev]'",
                        pytrace=False)
        pytest.skip("torch (the engine's test oracle) is not installed; pip install -e '.[dev]' to run these "
                    "tests", allow_module_level=True)
    return torch
