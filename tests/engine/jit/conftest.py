"""The jit/export/onnx tests import their small models from jit_models.py next to them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
