"""Job-side logging, like `torch.utils.tensorboard` or `wandb`: the same script runs anywhere.

Inside Kiln (the worker sets KILN_RUN_DIR and KILN_EVENTS) every call becomes an event the
platform ingests live; elsewhere it writes ./kiln-runs/<timestamp>/ with config.json,
metrics.jsonl, progress.json, artifacts/ and checkpoints/; with KILN_URL, KILN_TOKEN and KILN_RUN_ID
set, its metrics and progress also go to that run on the server, batched by a background thread (`remote`):
`log` and `progress` never wait on the network, and `finish()` (or the process's exit) sends what is queued.

Distributed jobs (RANK set by `python -m engine.distributed.run`, torchrun or `spawn`): only rank 0
records. On every other rank `log`, `log_params`, `progress`, `log_artifact`, `log_model` and
`save_checkpoint` are no-ops (`save_checkpoint` returns the path rank 0 writes), while `config`
and `resume()` work on every rank, so all ranks resume from the same checkpoint.

Example:
    >>> from engine import track
    >>> lr = track.config.get("lr", 0.1)
    >>> start = track.resume()                      # None on a fresh run
    >>> for step in range(0 if start is None else start.step + 1, 100):
    ...     track.log({"loss": 1.0 / (step + 1)})    # step auto-increments
    ...     track.save_checkpoint({"w": weights}, step=step)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.track.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from engine.track.session import Session

_session: Session | None = None


def init(config: Mapping[str, Any] | None = None, *, dir: str | os.PathLike[str] | None = None) -> Session:
    """Start tracking explicitly; `config` gives defaults that a Kiln run's params override.

    Calling it is optional: the first `log`/`config` access starts a session with no defaults.
    `dir` is the parent of local run folders (default ./kiln-runs); ignored inside Kiln.
    """
    global _session
    if _session is not None:
        _session.close()
    _session = Session.from_environment(os.environ, defaults=config, root=Path(dir) if dir else None)
    return _session


def finish() -> None:
    """End the session: flush what it has queued (metrics on their way to a server) and close its files."""
    global _session
    if _session is not None:
        _session.close()
        _session = None


def log(values: Mapping[str, Any], step: int | None = None) -> int:
    """Record metrics at `step` (the previous step + 1 when None); returns the step used."""
    return _current().log(values, step)


def log_params(params: Mapping[str, Any]) -> None:
    """Record hyperparameters (MLflow's `log_params`): they join `track.config` and, inside Kiln, the run's params.

    Values are text, booleans or numbers. The run table and compare view show them like submitted params; a
    param keeps its value, so an event that would change one the run already has is refused whole (the
    run's log says why). Outside Kiln they are added to the run folder's config.json.
    """
    _current().log_params(params)


def progress(*, step: int | None = None, total: int | None = None,
             epoch: int | None = None, epochs: int | None = None) -> None:
    """Report how far the run is: `step` of `total` optimizer steps and/or `epoch` of `epochs`.

    Give either pair or both (e.g. `track.progress(step=i + 1, total=len(loader) * epochs, epoch=e, epochs=epochs)`);
    counts are ints with 0 <= step <= total and 0 <= epoch <= epochs, else TypeError/ValueError and nothing
    is recorded. The run page draws a bar (by step when given, else by epoch) with an ETA from the rate so far.
    """
    _current().progress(step=step, total=total, epoch=epoch, epochs=epochs)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> Path:
    """Keep a file with the run (copied, so later changes to `path` do not matter)."""
    return _current().log_artifact(path, name)


def log_model(model: Any, example_inputs: Any, name: str = "model",
              formats: tuple[str, ...] = ("engine", "onnx")) -> dict[str, Path]:
    """Trace `model` on `example_inputs` and keep it as NAME.pt (engine.jit) and NAME.onnx (batch dim dynamic).

    Both are artifacts of kind "model" whose metadata holds the input/output signature; outside
    Kiln they go to the run folder's models/. "onnx" needs the onnx package (kiln[onnx]).
    Returns {format: path}.
    """
    return _current().log_model(model, example_inputs, name, formats)


def save_checkpoint(state: dict[str, Any], *, step: int) -> Path:
    """Save arrays, bytes and JSON values atomically as one safetensors file; returns its path.

    In a distributed job only rank 0 writes; on other ranks this is a no-op that returns the same path.
    In a trial of a promotion sweep, the checkpoint that covers the trial's rung waits there for the sweep
    controller to pause the trial (`engine.track.rung`; so does a `log` that reaches the rung after one).
    """
    return _current().save_checkpoint(state, step)


def resume() -> Checkpoint | None:
    """The checkpoint to continue from (a re-queued Kiln run gets its last one), or None."""
    return _current().resume()


def run_dir() -> Path:
    """The folder this run writes to."""
    return _current().run_dir


def _current() -> Session:
    return _session if _session is not None else init()


def __getattr__(name: str) -> Any:
    if name == "config":
        return _current().config
    raise AttributeError(f"module 'engine.track' has no attribute {name!r}")


__all__ = [
    "Checkpoint",
    "config",  # provided lazily by __getattr__
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_model",
    "log_params",
    "progress",
    "read_checkpoint",
    "resume",
    "run_dir",
    "save_checkpoint",
    "write_checkpoint",
]
