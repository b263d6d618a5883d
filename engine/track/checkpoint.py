"""Checkpoint files: one `engine.save` file per checkpoint (safetensors + JSON), never pickled.

The state may hold engine tensors (state dicts of models, optimizers, schedulers), NumPy
arrays, bytes and JSON values, nested as deep as needed; it is stored under ``state`` beside
the ``step`` it was saved at. Writing goes through a temporary name, fsync and rename.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.serialization import dumps, load

SUFFIX = ".safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """A saved state and the step it was saved at; `path` is the file it came from."""

    step: int
    state: dict[str, Any]
    path: Path


def checkpoint_name(step: int) -> str:
    """File name for a step; zero-padded so names sort by step."""
    return f"step-{step:010d}{SUFFIX}"


def write_checkpoint(directory: Path, state: dict[str, Any], *, step: int) -> Path:
    """Write `state` to `directory/step-N.safetensors`: temp file, fsync, rename, fsync the folder.

    Example:
        >>> path = write_checkpoint(Path(tmp), {"model": model.state_dict(), "epoch": 4}, step=4)  # doctest: +SKIP
    """
    if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
        raise TypeError("a checkpoint state must be a dict with string keys")
    try:
        data = dumps({"step": int(step), "state": state})
    except TypeError as exc:
        raise TypeError(f"checkpoint values must be tensors, arrays, bytes or JSON values: {exc}") from None
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / checkpoint_name(step)
    temp = directory / f".{final.name}.tmp-{os.getpid()}"
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, final)
    _fsync_dir(directory)
    return final


def read_checkpoint(path: Path) -> Checkpoint:
    """Load a checkpoint written by `write_checkpoint`."""
    saved = load(str(path))
    return Checkpoint(step=int(saved["step"]), state=saved["state"], path=Path(path))


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest finished checkpoint in `directory` (temp files are ignored), or None."""
    if not directory.is_dir():
        return None
    names = sorted(p for p in directory.iterdir() if p.name.startswith("step-") and p.name.endswith(SUFFIX))
    return names[-1] if names else None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
