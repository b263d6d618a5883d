"""Where a run's records go: Kiln's event channel, or a plain local run folder.

Inside Kiln the worker sets KILN_EVENTS to a JSON-lines file it tails. One object a line:

    {"type": "metrics", "step": 3, "time": 1700000000.0, "values": {"loss": 0.25}}
    {"type": "params", "time": 1700000000.0, "values": {"lr": 0.01, "optimizer": "adam"}}
    {"type": "progress", "step": 300, "total": 1000, "epoch": 2, "epochs": 10, "eta_seconds": 41.5, "time": ...}
    {"type": "artifact", "name": "plots/curve.png", "path": "artifacts/plots/curve.png", "time": ...}
    {"type": "checkpoint", "name": "step-0000000010.safetensors", "path": "checkpoints/...", "step": 10, "time": ...}
    {"type": "model", "name": "model.onnx", "path": "models/model.onnx", "time": ...,
     "metadata": {"model": "model", "format": "onnx", "signature": {"inputs": [...], "outputs": [...]}}}

Paths are relative to the run folder. Every line is flushed as written; a checkpoint
line is also fsynced, and is only written after its file was renamed into place.
Outside Kiln the same calls write metrics.jsonl and progress.json in the local folder (params into config.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol


class Channel(Protocol):
    def metrics(self, step: int, time: float, values: dict[str, float]) -> None: ...
    def params(self, time: float, values: dict[str, Any]) -> None: ...
    def progress(self, record: dict[str, Any]) -> None: ...
    def artifact(self, name: str, path: str, time: float) -> None: ...
    def checkpoint(self, name: str, path: str, step: int, time: float) -> None: ...
    def model(self, name: str, path: str, time: float, metadata: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class SilentChannel:
    """Drops everything: the channel of ranks other than 0 in a distributed job."""

    def metrics(self, step: int, time: float, values: dict[str, float]) -> None:
        pass

    def params(self, time: float, values: dict[str, Any]) -> None:
        pass

    def progress(self, record: dict[str, Any]) -> None:
        pass

    def artifact(self, name: str, path: str, time: float) -> None:
        pass

    def checkpoint(self, name: str, path: str, step: int, time: float) -> None:
        pass

    def model(self, name: str, path: str, time: float, metadata: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class KilnChannel:
    """Appends typed events to the file the worker tails."""

    def __init__(self, events_path: Path):
        self._file = open(events_path, "a", encoding="utf-8")

    def metrics(self, step: int, time: float, values: dict[str, float]) -> None:
        self._write({"type": "metrics", "step": step, "time": time, "values": values})

    def params(self, time: float, values: dict[str, Any]) -> None:
        self._write({"type": "params", "time": time, "values": values})

    def progress(self, record: dict[str, Any]) -> None:
        self._write({"type": "progress", **record})

    def artifact(self, name: str, path: str, time: float) -> None:
        self._write({"type": "artifact", "name": name, "path": path, "time": time})

    def checkpoint(self, name: str, path: str, step: int, time: float) -> None:
        self._write({"type": "checkpoint", "name": name, "path": path, "step": step, "time": time})
        os.fsync(self._file.fileno())

    def model(self, name: str, path: str, time: float, metadata: dict[str, Any]) -> None:
        self._write({"type": "model", "name": name, "path": path, "time": time, "metadata": metadata})

    def close(self) -> None:
        self._file.close()

    def _write(self, event: dict[str, Any]) -> None:
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()


class LocalChannel:
    """A run folder on the user's machine: metrics.jsonl plus progress.json."""

    def __init__(self, run_dir: Path):
        self._dir = run_dir
        self._metrics = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")

    def metrics(self, step: int, time: float, values: dict[str, float]) -> None:
        self._metrics.write(json.dumps({"step": step, "time": time, **values}) + "\n")
        self._metrics.flush()

    def params(self, time: float, values: dict[str, Any]) -> None:
        """Added to the folder's config.json (rewritten whole, then renamed into place)."""
        path = self._dir / "config.json"
        config = json.loads(path.read_text()) if path.exists() else {}
        temp = self._dir / ".config.json.tmp"
        temp.write_text(json.dumps({**config, **values}, indent=2, default=str))
        os.replace(temp, path)

    def progress(self, record: dict[str, Any]) -> None:
        temp = self._dir / ".progress.json.tmp"
        temp.write_text(json.dumps(record))
        os.replace(temp, self._dir / "progress.json")

    def artifact(self, name: str, path: str, time: float) -> None:
        """Nothing to report: the file is already in the folder's artifacts/."""

    def checkpoint(self, name: str, path: str, step: int, time: float) -> None:
        """Nothing to report: the file is already in the folder's checkpoints/."""

    def model(self, name: str, path: str, time: float, metadata: dict[str, Any]) -> None:
        """The signature beside the file: models/NAME.FORMAT.json."""
        (self._dir / f"{path}.json").write_text(json.dumps(metadata, indent=2))

    def close(self) -> None:
        self._metrics.close()
