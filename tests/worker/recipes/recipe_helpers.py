"""Reading what a recipe run left in its local folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.serialization import loads
from engine.track import read_checkpoint


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("step-*.safetensors"))


def decoded_state(path: Path) -> dict:
    """A checkpoint's state with the engine.save blobs decoded (their bytes aren't canonical)."""
    state = read_checkpoint(path).state
    return {key: loads(value) if isinstance(value, bytes) else value for key, value in state.items()}


def assert_same(a, b, where: str = "state") -> None:
    """Exact equality through dicts, lists, tuples, tensors and arrays."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif hasattr(a, "numpy") or isinstance(a, np.ndarray):
        x, y = (v.cpu().numpy() if hasattr(v, "numpy") else v for v in (a, b))
        assert x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y), f"{where}: arrays differ"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
