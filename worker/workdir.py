"""The job's fresh working folder: KILN_DATA_DIR/runs/<run>/<attempt>/ with code, config and resume state."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import default_storage

from webapp.experiments.code import unpack_zip
from webapp.experiments.models import Artifact, Run

EVENTS_FILE = ".kiln-events.jsonl"
CONFIG_FILE = ".kiln-config.json"


@dataclass(frozen=True)
class WorkDir:
    path: Path
    entrypoint: Path | None  # None for a recipe run: the built-in recipe runner is the program
    events: Path
    config: Path
    resume: Path | None
    resume_step: int | None


def attempt_folder(data_dir: Path, run_id: int, attempt: int, node_rank: int = 0) -> Path:
    """runs/<run>/<attempt>; node k > 0 of a multi-node run: runs/<run>/<attempt>-node<k> (workers may share a disk)."""
    return data_dir / "runs" / str(run_id) / (f"{attempt}-node{node_rank}" if node_rank else str(attempt))


def prepare_workdir(run: Run, attempt: int, data_dir: Path, *, owner_uid: int | None, node_rank: int = 0) -> WorkDir:
    """Unpack the run's code, write its params and copy in its last checkpoint; a fresh folder per attempt."""
    path = attempt_folder(data_dir, run.id, attempt, node_rank)
    if path.exists():
        shutil.rmtree(path)  # a leftover of this very attempt: never trusted
    path.mkdir(parents=True)
    entrypoint = _place_code(run, path)
    config = path / CONFIG_FILE
    # A recipe run's config is its recipe block; a code run's is its params.
    config.write_text(json.dumps(run.spec["recipe"] if run.kind == "recipe" else run.params))
    events = path / EVENTS_FILE
    events.touch()
    resume, resume_step = _copy_last_checkpoint(run, path / "resume")
    if owner_uid is not None:
        _chown_tree(path, owner_uid)
    return WorkDir(path=path, entrypoint=entrypoint, events=events, config=config,
                   resume=resume, resume_step=resume_step)


def _place_code(run: Run, path: Path) -> Path | None:
    """Unpack a code run's file or zip into the folder; a recipe run has no code of its own."""
    if run.kind == "recipe":
        return None
    with default_storage.open(run.code_path, "rb") as handle:
        code = handle.read()
    if run.code_path.endswith(".zip"):
        unpack_zip(code, str(path))
    else:
        (path / run.entrypoint).write_bytes(code)
    return path / run.entrypoint


def last_checkpoint(run_id: int) -> Artifact | None:
    return Artifact.objects.filter(run_id=run_id, kind="checkpoint").order_by("-step", "-created_at").first()


def _copy_last_checkpoint(run: Run, folder: Path) -> tuple[Path | None, int | None]:
    artifact = last_checkpoint(run.id)
    if artifact is None:
        return None, None
    folder.mkdir()
    target = folder / Path(artifact.name).name
    with default_storage.open(artifact.storage_path, "rb") as source, open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
    return target, artifact.step


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)
