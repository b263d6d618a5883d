"""Optimizer tests: make the shared model helpers importable (torch fixture from tests/engine)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
