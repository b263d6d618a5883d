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
    entrypoint: Path
    events: Path
    config: Path
    resume: Path | None
    resume_step: int | None


def prepare_workdir(run: Run, attempt: int, data_dir: Path, *, owner_uid: int | None) -> WorkDir:
    """Unpack the run's code, write its params and copy in its last checkpoint; a fresh folder per attempt."""
    path = data_dir / "runs" / str(run.id) / str(attempt)
    if path.exists():
        shutil.rmtree(path)  # a leftover of this very attempt: never trusted
    path.mkdir(parents=True)
    with default_storage.open(run.code_path, "rb") as handle:
        code = handle.read()
    if run.code_path.endswith(".zip"):
        unpack_zip(code, str(path))
    else:
        (path / run.entrypoint).write_bytes(code)
    config = path / CONFIG_FILE
    config.write_text(json.dumps(run.params))
    events = path / EVENTS_FILE
    events.touch()
    resume, resume_step = _copy_last_checkpoint(run, path / "resume")
    if owner_uid is not None:
        _chown_tree(path, owner_uid)
    return WorkDir(path=path, entrypoint=path / run.entrypoint, events=events, config=config,
                   resume=resume, resume_step=resume_step)


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
