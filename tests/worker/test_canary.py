"""The start-up canary proves what a job's sandbox holds, and code runs go only where it holds."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time

import pytest
from django.conf import settings
from services import require

from webapp.cluster.models import Worker
from webapp.cluster.services import worker_record_isolation, worker_register
from webapp.experiments.submit import run_submit
from worker import canary, sandbox
from worker.canary import NOT_ISOLATED, isolation_verdict, run_canary
from worker.executor import execute
from worker.limits import JobLimits
from worker.sandbox import UID_BASE, UID_OFFSETS, UID_SPAN, bwrap_path, installation_uid_offset, sandbox_for

from .conftest import ProjectFactory

ALL_CHECKS = {
    "runs as a uid other than the worker's", "cannot read the worker's environment", "sees only its own processes",
    "cannot read the data folder", "cannot read another run's folder", "cannot reach a port the worker opened",
    "leaves no process behind",
}


def _require_isolation() -> None:
    require(bwrap_path(settings.CONFIG.bwrap) is not None, "bubblewrap is not installed (apt-get install bubblewrap)")
    require(os.geteuid() == 0, "jobs get a uid of their own only when the worker runs as root")


@pytest.fixture
def fresh_verdict():
    """The executor's verdict is per process: each test here gets its own canary run."""
    canary.forget_verdict()
    yield
    canary.forget_verdict()


@pytest.fixture
def without_bubblewrap(settings, fresh_verdict):
    """KILN_BWRAP=none: what a machine without bubblewrap gets, and code runs not opted in."""
    settings.CONFIG = dataclasses.replace(settings.CONFIG, bwrap="none", allow_unisolated_code=False)


def _checks(verdict: dict) -> dict[str, dict]:
    return {check["name"]: check for check in verdict["checks"]}


def test_under_bubblewrap_every_check_holds_within_three_seconds(settings, tmp_path):
    _require_isolation()
    config = settings.CONFIG
    (config.data_dir / "artifacts" / "secret-run").mkdir(parents=True)
    (config.data_dir / "secret_key").write_text("not for jobs")
    started = time.monotonic()
    verdict = run_canary(config)
    assert time.monotonic() - started < 3
    checks = _checks(verdict)
    assert ALL_CHECKS <= set(checks), verdict
    assert all(c["held"] for c in checks.values()), verdict["checks"]
    if config.database_vendor == "postgresql":
        assert "cannot reach database" in checks
    assert verdict["summary"].startswith("isolated: ") and "bubblewrap" in verdict["sandbox"]
    assert not list((config.data_dir / "runs").iterdir()), "the canary left its folders behind"


def test_without_bubblewrap_the_canary_reports_what_a_job_can_reach(settings):
    config = dataclasses.replace(settings.CONFIG, bwrap="none")
    config.data_dir.mkdir(parents=True)
    (config.data_dir / "secret_key").write_text("not for jobs")
    verdict = run_canary(config)
    checks = _checks(verdict)
    for name in ("sees only its own processes", "cannot read the data folder", "cannot reach a port the worker opened",
                 "cannot read another run's folder"):
        assert not checks[name]["held"], checks[name]
    assert "secret_key" in checks["cannot read the data folder"]["detail"]
    assert verdict["summary"].startswith("NOT isolated: ") and "NOT isolated" in verdict["sandbox"]


@pytest.mark.django_db
def test_the_worker_row_records_the_verdict_and_isolated_only_when_all_held():
    worker = worker_register(name="w-iso", hostname="here", queue="q", cpu_slots=1, gpus=[])
    held = {"checked_at": "now", "sandbox": "s", "summary": "ok",
            "checks": [{"name": "a", "held": True, "detail": ""}, {"name": "b", "held": True, "detail": ""}]}
    worker_record_isolation(worker_id=worker.id, isolation=held)
    assert Worker.objects.get(id=worker.id).isolated
    failed = {**held, "checks": [*held["checks"], {"name": "c", "held": False, "detail": "connected"}]}
    worker_record_isolation(worker_id=worker.id, isolation=failed)
    row = Worker.objects.get(id=worker.id)
    assert not row.isolated and row.isolation["checks"][2]["detail"] == "connected"
    worker_record_isolation(worker_id=worker.id, isolation={"checks": []})
    assert not Worker.objects.get(id=worker.id).isolated  # no checks proves nothing


def test_a_code_run_on_an_unisolated_worker_is_refused_and_never_starts(without_bubblewrap, run_job, log_text, settings,
                                                                         tmp_path):
    marker = tmp_path / "ran"
    run, outcome = run_job(f"print('I ran')\nopen({str(marker)!r}, 'w').write('ran')\n")
    assert outcome.state == "failed" and outcome.reason.startswith(f"{NOT_ISOLATED}: ")
    assert "apt install bubblewrap" in outcome.reason and "KILN_ALLOW_UNISOLATED_CODE=1" in outcome.reason
    assert "I ran" not in log_text(run) and not marker.exists()
    assert not (settings.CONFIG.data_dir / "runs" / str(run.id)).exists()


def test_with_the_opt_out_an_unisolated_code_run_runs_and_its_log_says_so(without_bubblewrap, run_job, log_text,
                                                                         settings):
    settings.CONFIG = dataclasses.replace(settings.CONFIG, allow_unisolated_code=True)
    run, outcome = run_job("print('I ran')\n")
    assert outcome.state == "succeeded", log_text(run)
    text = log_text(run)
    assert "I ran" in text and "this job is NOT isolated" in text and "KILN_ALLOW_UNISOLATED_CODE is set" in text


@pytest.mark.slow
def test_a_recipe_run_runs_on_an_unisolated_worker(without_bubblewrap, claimed, settings, log_text):
    project = ProjectFactory()
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": 1, "batch_size": 32, "hidden_size": 8}}
    run = claimed(run_submit(user=project.owner_user, project=project, spec=spec).runs[0])
    outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                      limits=JobLimits(wall_seconds=120))
    assert outcome.state == "succeeded", log_text(run)
    assert not isolation_verdict(settings.CONFIG)["summary"].startswith("isolated")


def test_a_job_can_start_its_own_interpreter_in_a_subprocess(run_job, log_text):
    _require_isolation()
    script = """
        import subprocess, sys
        out = subprocess.run([sys.executable, "-c", "import numpy; print('child', numpy.__name__)"],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip())
    """
    run, outcome = run_job(script)
    assert outcome.state == "succeeded", log_text(run)
    assert "child numpy" in log_text(run)


def test_the_data_folder_stays_hidden_when_a_bound_folder_holds_it(tmp_path):
    require(bwrap_path(settings.CONFIG.bwrap) is not None, "bubblewrap is not installed (apt-get install bubblewrap)")
    bound = tmp_path / "install"
    data_dir = bound / "var"
    run_dir = data_dir / "runs" / "7" / "1"
    run_dir.mkdir(parents=True)
    (data_dir / "kiln.sqlite3").write_text("every run's rows")
    (bound / "tool.txt").write_text("readable\n")
    box = dataclasses.replace(sandbox_for(7, run_dir, (bound,), data_dir=data_dir), uid=None)
    listing = subprocess.run(box.argv(["sh", "-c", f"cat {bound}/tool.txt; ls -A {data_dir}"]),
                             capture_output=True, text=True, timeout=20, check=True)
    assert listing.stdout.split() == ["readable", "runs"]


def test_job_uids_come_from_a_block_of_their_own_per_installation(tmp_path):
    first = installation_uid_offset(tmp_path / "a")
    (tmp_path / "b").mkdir()
    assert 0 <= first < UID_OFFSETS and installation_uid_offset(tmp_path / "a") == first  # kept, not redrawn
    (tmp_path / "b" / "uid_offset").write_text(f"{(first + 1) % UID_OFFSETS}\n")
    box = sandbox_for(12, tmp_path / "a" / "runs" / "12" / "1", (), data_dir=tmp_path / "a")
    if box.uid is not None:
        assert box.uid == UID_BASE + first * UID_SPAN + 12
        other = sandbox_for(12, tmp_path / "b" / "runs" / "12" / "1", (), data_dir=tmp_path / "b")
        assert other.uid != box.uid
    assert UID_BASE + (UID_OFFSETS - 1) * UID_SPAN + UID_SPAN - 1 < 2**32 - 1
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "uid_offset").write_text("lots\n")
    with pytest.raises(ValueError, match="uid_offset must hold a whole number"):
        installation_uid_offset(tmp_path / "c")


def test_kiln_bwrap_none_disables_bubblewrap():
    assert sandbox.bwrap_path("none") is None
