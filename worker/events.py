"""Tail the job's event file (written by `engine.track`) and store what it reports.

Every store is idempotent: metrics are unique on (run, key, step), artifacts on (run, name),
params keep their value, progress is overwritten. So re-reading a file, or a redelivered run, never duplicates.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files import File

from webapp.experiments.job_params import Scalar, job_params_add, job_params_checked
from webapp.experiments.job_progress import job_progress_checked, job_progress_set
from webapp.experiments.results import MAX_METRIC_BATCH, MetricPoint, ResultError, artifact_store, metrics_log

log = logging.getLogger(__name__)
MAX_READ_BYTES = 8 * 1024 * 1024  # per poll; the rest is read on the next one
MAX_STEP = 2**62


class EventReader:
    """Returns the complete new lines of a growing file, parsed; a half-written last line waits."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def read(self) -> tuple[list[dict[str, Any]], list[str]]:
        """(events, problems) since the last call."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(MAX_READ_BYTES)
        except FileNotFoundError:
            return [], []
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) >= MAX_READ_BYTES:  # one absurdly long line: skip it
                self.offset += len(data)
                return [], ["skipped an event line longer than 8 MB"]
            return [], []
        self.offset += end + 1
        events, problems = [], []
        for number, line in enumerate(data[:end].split(b"\n")):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                problems.append(f"ignored a malformed event line: {line[:80]!r}")
                continue
            if isinstance(event, dict):
                events.append(event)
            else:
                problems.append(f"ignored event line {number}: not an object")
        return events, problems


@dataclass
class Batch:
    points: list[MetricPoint] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    params: list[dict[str, Scalar]] = field(default_factory=list)  # one per event: each stored or refused whole
    files: list[tuple[str, str, str, int | None, dict]] = field(default_factory=list)  # kind, name, path, step, metadata


class EventIngestor:
    """Stores parsed events for one run; files must be regular files inside `run_dir`."""

    def __init__(self, run_id: int, run_dir: Path, note: Callable[[str], None], *, attempt: int | None = None):
        self.run_id = run_id
        self.attempt = attempt  # the attempt logging: a superseded attempt's late points are kept for audit only
        self.run_dir = run_dir.resolve()
        self.note = note
        self.stored_points = 0
        self.checkpoints: list[int] = []

    def ingest(self, events: list[dict[str, Any]]) -> None:
        batch = Batch()
        for event in events:
            try:
                self._collect(event, batch)
            except (KeyError, TypeError, ValueError) as exc:
                self.note(f"ignored a malformed {event.get('type', '?')!s:.20} event: {exc}")
        for start in range(0, len(batch.points), MAX_METRIC_BATCH):
            try:
                self.stored_points += metrics_log(
                    run_id=self.run_id, points=batch.points[start : start + MAX_METRIC_BATCH], attempt=self.attempt
                )
            except ResultError as exc:
                self.note(f"metrics not stored: {exc}")
        if batch.progress is not None:
            job_progress_set(run_id=self.run_id, progress=batch.progress)
        for params in batch.params:
            try:
                job_params_add(run_id=self.run_id, params=params)
            except ResultError as exc:
                self.note(f"params not stored: {exc}")
        for kind, name, path, step, metadata in batch.files:
            self._store_file(kind, name, path, step, metadata)

    def _collect(self, event: dict[str, Any], batch: Batch) -> None:
        kind = event.get("type")
        if kind == "metrics":
            step = _step(event["step"])
            wall = float(event.get("time", 0.0))
            for key, value in dict(event["values"]).items():
                if not isinstance(key, str) or not 0 < len(key) <= 200:
                    raise ValueError(f"metric key {key!r:.40} must be 1-200 characters")
                batch.points.append(MetricPoint(key=key, step=step, value=float(value), wall_time=wall))
        elif kind == "progress":
            batch.progress = job_progress_checked(event)
        elif kind == "params":
            batch.params.append(job_params_checked(event["values"]))
        elif kind in ("artifact", "checkpoint"):
            file_step = _step(event["step"]) if kind == "checkpoint" else None
            name = str(event["name"])
            if kind == "checkpoint":
                name = f"checkpoints/{name}"
            batch.files.append((kind, name, str(event["path"]), file_step, {}))
        elif kind == "model":
            batch.files.append((kind, str(event["name"]), str(event["path"]), None, _model_metadata(event["metadata"])))
        else:
            raise ValueError(f"unknown event type {kind!r:.40}")

    def _store_file(self, kind: str, name: str, relative: str, step: int | None, metadata: dict) -> None:
        path = _inside(self.run_dir, relative)
        if path is None:
            self.note(f"{kind} {name!r} not stored: {relative!r} is not a regular file inside the run folder")
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            self.note(f"{kind} {name!r} not stored: {exc.strerror}")
            return
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                self.note(f"{kind} {name!r} not stored: not a regular file")
                return
            try:
                artifact_store(run_id=self.run_id, name=name, kind=kind, file=File(handle), step=step, metadata=metadata)
            except ResultError as exc:
                self.note(f"{kind} not stored: {exc}")
                return
        if kind == "checkpoint" and step is not None:
            self.checkpoints.append(step)


def _model_metadata(value: Any) -> dict:
    """A model event's metadata: {"model", "format", "signature": {"inputs", "outputs"}}, at most 64 KB."""
    if not isinstance(value, dict) or not isinstance(value.get("model"), str) or value.get("format") not in ("engine", "onnx"):
        raise ValueError("model metadata needs a model name and a format (engine or onnx)")
    signature = value.get("signature")
    if not isinstance(signature, dict) or not all(isinstance(signature.get(k), list) for k in ("inputs", "outputs")):
        raise ValueError("model metadata needs a signature with inputs and outputs lists")
    if len(json.dumps(value)) > 65536:
        raise ValueError("model metadata is larger than 64 KB")
    return {"model": value["model"][:255], "format": value["format"], "signature": signature}


def _step(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_STEP:
        raise ValueError(f"step must be a non-negative integer, got {value!r:.40}")
    return value


def _inside(root: Path, relative: str) -> Path | None:
    """The resolved path if it stays inside `root` through every symlink, else None."""
    candidate = (root / relative).resolve()
    if candidate == root or root not in candidate.parents or not candidate.is_file():
        return None
    return candidate
