"""Lets the scheduler tests import their helpers (`cluster_factories`, `simulator`) by name."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
