"""Worker tests run real jobs in real sandboxes, in-process against the test database."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "webapp"))
from factories import ProjectFactory

from webapp.cluster.services import worker_register
from webapp.experiments.lifecycle import run_claim_attempt, run_transition
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import CodeUpload, run_submit
from worker.executor import execute
from worker.limits import JobLimits
from worker.outcome import Outcome
from worker.sandbox import bwrap_path


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "store")}}
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    # NOTE: where bubblewrap is missing the canary cannot prove isolation and code runs would be refused:
    # these tests then opt out explicitly, as a single-user machine would (tests/worker/test_canary.py
    # tests the refusal itself).
    settings.CONFIG = dataclasses.replace(settings.CONFIG, data_dir=tmp_path / "data", worker_name="w-test",
                                          allow_unisolated_code=bwrap_path(settings.CONFIG.bwrap) is None)


@pytest.fixture
def submit_code(db):
    """`submit_code(source, params=...)` -> a queued code run of that script."""
    project = ProjectFactory()

    def submit(source: str, *, params: dict | None = None, filename: str = "main.py") -> Run:
        spec = {"params": params or {}}
        upload = CodeUpload(filename=filename, data=textwrap.dedent(source).encode())
        return run_submit(user=project.owner_user, project=project, spec=spec, code=upload).runs[0]

    return submit


@pytest.fixture
def claimed(db):
    """`claimed(run)` -> the run scheduled on worker w-test and claimed as running (attempt 1, 2, ...)."""
    worker = worker_register(name="w-test", hostname="here", queue="q", cpu_slots=2, gpus=[])

    def claim(run: Run, *, start: bool = True) -> Run:
        assert run_claim_attempt(run_id=run.id, worker_id=worker.id, gpu_indices=[])
        run.refresh_from_db()
        if start:
            assert run_transition(run_id=run.id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING,
                                  expected_attempt=run.attempt)
            run.refresh_from_db()
        return run

    return claim


@pytest.fixture
def run_job(submit_code, claimed, settings):
    """`run_job(source, limits=...)` -> (run, outcome): submit, claim and execute a script here."""

    def go(source: str, *, limits: JobLimits | None = None, params: dict | None = None) -> tuple[Run, Outcome]:
        run = claimed(submit_code(source, params=params))
        outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                          limits=limits or JobLimits(wall_seconds=60))
        run.refresh_from_db()
        return run, outcome

    return go


@pytest.fixture
def log_text():
    """`log_text(run)` -> the run's stored log, one line per log line."""

    def text(run: Run) -> str:
        return "\n".join(run.log_lines.order_by("seq").values_list("text", flat=True))

    return text
