"""One tracked run: its config, step counter, channel and folders."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.track.channel import Channel, KilnChannel, LocalChannel, SilentChannel
from engine.track.checkpoint import (
    Checkpoint,
    checkpoint_name,
    latest_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from engine.track.models import write_model
from engine.track.progress import fraction_done, progress_counts
from engine.track.remote import MetricBatcher, ServerChannel
from engine.track.rung import RungWait

LOCAL_ROOT = "kiln-runs"


class Session:
    """Everything `engine.track` writes goes through here; `in_kiln` says which channel.

    In a distributed job only rank 0 (RANK unset or 0) records: on other ranks metrics, progress,
    artifacts, models and checkpoints are no-ops, so N ranks make one run, not N copies of it.
    """

    def __init__(self, run_dir: Path, channel: Channel, config: dict[str, Any], *, in_kiln: bool,
                 resume_path: Path | None, rank: int = 0, rung: RungWait | None = None):
        self.run_dir = run_dir
        self.rank = rank
        self.config = config
        self.in_kiln = in_kiln
        self._channel = channel
        self._resume_path = resume_path
        self._next_step = 0
        self._started = time.time()
        self._resumed = False
        self._progress_from: tuple[float, float] | None = None  # (time, fraction done) the ETA measures from
        self._rung = rung  # a promotion sweep's trial: waits at its rung for the sweep controller
        atexit.register(self.close)

    @classmethod
    def from_environment(cls, env: Mapping[str, str], *, defaults: Mapping[str, Any] | None = None,
                         root: Path | None = None) -> Session:
        """Kiln's channel when the worker set KILN_RUN_DIR and KILN_EVENTS, else a new local folder."""
        config = dict(defaults or {})
        resume = Path(env["KILN_RESUME"]) if env.get("KILN_RESUME") else None
        rank = _rank(env)
        if env.get("KILN_RUN_DIR") and env.get("KILN_EVENTS"):
            run_dir = Path(env["KILN_RUN_DIR"])
            if env.get("KILN_CONFIG"):
                config.update(json.loads(Path(env["KILN_CONFIG"]).read_text()))
            channel: Channel = KilnChannel(Path(env["KILN_EVENTS"])) if rank == 0 else SilentChannel()
            rung = RungWait.from_environment(env) if rank == 0 else None
            return cls(run_dir, channel, config, in_kiln=True, resume_path=resume, rank=rank, rung=rung)
        if rank != 0:  # rank 0 keeps the local run folder; the others write nothing
            return cls(Path.cwd(), SilentChannel(), config, in_kiln=False, resume_path=resume, rank=rank)
        run_dir = _new_local_dir(root or Path.cwd() / LOCAL_ROOT)
        (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str))
        local: Channel = LocalChannel(run_dir)
        if env.get("KILN_URL") and env.get("KILN_RUN_ID"):  # a run on a server too: its metrics go there
            batcher = MetricBatcher(env["KILN_URL"], env.get("KILN_TOKEN"), _run_id(env["KILN_RUN_ID"]))
            local = ServerChannel(local, batcher)
        return cls(run_dir, local, config, in_kiln=False, resume_path=resume)

    def log(self, values: Mapping[str, Any], step: int | None = None) -> int:
        if step is None:
            step = self._next_step
        elif isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        clean = {str(key): _number(key, value) for key, value in values.items()}
        self._next_step = max(self._next_step, step + 1)
        if clean:
            self._channel.metrics(step, time.time(), clean)
            if self._rung is not None:
                self._rung.logged(step, clean)
                self._wait_at_rung()
        return step

    def log_params(self, values: Mapping[str, Any]) -> None:
        clean = {str(key): _param(key, value) for key, value in values.items()}
        self.config.update(clean)
        if clean:
            self._channel.params(time.time(), clean)

    def progress(self, *, step: int | None = None, total: int | None = None,
                 epoch: int | None = None, epochs: int | None = None) -> None:
        counts = progress_counts(step=step, total=total, epoch=epoch, epochs=epochs)
        now, done = time.time(), fraction_done(counts)
        if self._progress_from is None:
            # a fresh run started from nothing at session start; a resumed one measures from its first report
            self._progress_from = (now, done) if self._resumed else (self._started, 0.0)
        since, done_then = self._progress_from
        rate = (done - done_then) / (now - since) if now > since and done > done_then else None
        eta = (1.0 - done) / rate if rate else None
        self._channel.progress({**counts, "eta_seconds": eta, "time": now})

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no such file to log as an artifact: {source}")
        if self.rank != 0:
            return source
        name = _safe_name(name or source.name)
        target = self.run_dir / "artifacts" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != target.resolve():
            temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            shutil.copyfile(source, temp)
            os.replace(temp, target)
        self._channel.artifact(name, str(target.relative_to(self.run_dir)), time.time())
        return target

    def save_checkpoint(self, state: dict[str, Any], step: int) -> Path:
        if self.rank != 0:  # rank 0 alone writes: every rank holds the same state after DDP's all_reduce
            return self.run_dir / "checkpoints" / checkpoint_name(step)
        path = write_checkpoint(self.run_dir / "checkpoints", state, step=step)
        self._channel.checkpoint(path.name, str(path.relative_to(self.run_dir)), step, time.time())
        if self._rung is not None:
            self._rung.checkpointed(step)
            self._wait_at_rung()
        return path

    def log_model(self, model: Any, example_inputs: Any, name: str, formats: Any) -> dict[str, Path]:
        name = _safe_name(name)
        if "/" in name:
            raise ValueError(f"model name {name!r} must not contain /")
        if self.rank != 0:
            return {}
        paths, signature = write_model(self.run_dir / "models", model, example_inputs, name=name, formats=formats)
        for fmt, path in paths.items():
            metadata = {"model": name, "format": fmt, "signature": signature}
            self._channel.model(path.name, str(path.relative_to(self.run_dir)), time.time(), metadata)
        return paths

    def resume(self) -> Checkpoint | None:
        path = self._resume_path or latest_checkpoint(self.run_dir / "checkpoints")
        if path is None or not path.exists():
            return None
        checkpoint = read_checkpoint(path)
        self._next_step = max(self._next_step, checkpoint.step + 1)
        self._resumed = True
        return checkpoint

    def close(self) -> None:
        self._channel.close()

    def _wait_at_rung(self) -> None:
        """Once the rung's report and a checkpoint after it are written (each event line is flushed as
        written), wait for the worker to stop the job (`engine.track.rung`)."""
        if self._rung is not None and self._rung.ready:
            self._rung.wait()


def _rank(env: Mapping[str, str]) -> int:
    """This process's global rank from RANK (set by engine.distributed.run, torchrun, spawn); 0 without one."""
    value = env.get("RANK", "")
    return int(value) if value.isdigit() else 0


def _run_id(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"KILN_RUN_ID must be a run's id (a positive integer), got {value!r}")
    return int(value)


def _number(key: Any, value: Any) -> float:
    """A metric value as a float: Python and NumPy numbers, 0-d arrays, anything with .item()."""
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, (int, float)):
        return float(item)
    raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")


def _param(key: Any, value: Any) -> bool | int | float | str:
    """A param value as a JSON scalar: text, a boolean or a number (NumPy's too, 0-d arrays, anything with .item())."""
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, bool | int | float | str):
        return item
    raise TypeError(f"param {key!r} must be text, a boolean or a number, got {type(value).__name__}")


def _safe_name(name: str) -> str:
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts or parts[0].startswith("."):
        raise ValueError(f"artifact name {name!r} must be a relative path inside the run")
    return "/".join(parts)


def _new_local_dir(root: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in ["", *(f"-{i}" for i in range(1, 1000))]:
        candidate = root / f"{stamp}{suffix}"
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {root}")


__all__ = ["Checkpoint", "Session"]
