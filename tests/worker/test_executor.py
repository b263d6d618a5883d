"""The executor runs a real job in its sandbox and reports how it ended."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest
from django.conf import settings
from django.db import connection
from services import require

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Artifact, RunState
from worker import cgroup, sandbox, shutdown
from worker.executor import execute
from worker.limits import JobLimits
from worker.sandbox import bwrap_path
from worker.shutdown import stop_running_jobs
from worker.tasks import _record

TRACKED = """
    import numpy as np
    from engine import track
    start = track.resume()
    first = 0 if start is None else start.step + 1
    for step in range(first, int(track.config["steps"])):
        track.log({"loss": 1.0 / (step + 1), "acc": step / 10})
        track.progress(epoch=step + 1, epochs=int(track.config["steps"]))
        track.save_checkpoint({"w": np.full(3, step, dtype=np.float32), "step": step}, step=step)
    print("trained", track.config["steps"], "steps")
"""


def test_a_tracked_script_succeeds_with_metrics_progress_checkpoints_and_logs(run_job, log_text):
    run, outcome = run_job(TRACKED, params={"steps": 4})
    assert (outcome.state, outcome.exit_code) == ("succeeded", 0)
    assert sorted(run.metrics.filter(key="loss").values_list("step", flat=True)) == [0, 1, 2, 3]
    assert run.progress["epoch"] == 4 and run.progress["epochs"] == 4
    checkpoints = Artifact.objects.filter(run=run, kind="checkpoint").order_by("step")
    assert [c.step for c in checkpoints] == [0, 1, 2, 3] and all(len(c.sha256) == 64 for c in checkpoints)
    assert "trained 4 steps" in log_text(run)


def test_a_failing_script_fails_with_its_exit_code_and_last_error(run_job, log_text):
    run, outcome = run_job("import sys\nprint('about to fail')\nraise SystemExit('bad input: 42')\n")
    assert outcome.state == "failed" and outcome.exit_code == 1
    assert "exited with code 1" in outcome.reason and "bad input: 42" in outcome.reason
    assert "about to fail" in log_text(run)


def test_a_segfault_is_reported_by_signal(run_job):
    _, outcome = run_job("import ctypes\nctypes.string_at(0)\n")
    assert outcome.state == "failed" and "SIGSEGV" in outcome.reason


def test_the_wall_clock_limit_stops_the_job(run_job):
    started = time.monotonic()
    _, outcome = run_job("import time\ntime.sleep(60)\n", limits=JobLimits(wall_seconds=1.5))
    assert outcome.state == "failed" and "time limit" in outcome.reason
    assert time.monotonic() - started < 10


@pytest.mark.django_db(transaction=True)
def test_cancel_kills_the_whole_process_tree_within_five_seconds(submit_code, claimed, settings):

    script = """
        import os, subprocess, sys, time
        if os.fork() == 0:          # a grandchild that leaves the process group
            os.setsid()
            time.sleep(120)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        print("children started", flush=True)
        time.sleep(120)
    """
    run = claimed(submit_code(script))
    thread, result = _execute_in_background(run, settings, started_when="children started")
    before = _job_processes(run.id)
    assert len(before) >= 3
    assert run_transition(run_id=run.id, from_states=(RunState.RUNNING,), to_state=RunState.CANCELLED)
    cancelled_at = time.monotonic()
    thread.join(timeout=10)
    assert result["outcome"].state == "cancelled"
    assert time.monotonic() - cancelled_at < 5
    assert [p for p in before if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"] == []


def test_the_job_environment_holds_no_platform_secrets(run_job, log_text, monkeypatch):
    require(bwrap_path(settings.CONFIG.bwrap) is not None, "without bubblewrap jobs see other processes (apt-get install bubblewrap)")
    monkeypatch.setenv("SECRET_KEY", "very-secret-key-value")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:dbpass@h/db")
    script = """
        import glob, os
        print("ENV", sorted(os.environ))
        for path in glob.glob("/proc/[0-9]*/environ"):
            try:
                print("PROC", path, open(path, "rb").read()[:2000])
            except OSError:
                pass
        print("CUDA", repr(os.environ["CUDA_VISIBLE_DEVICES"]), "HOME", os.environ["HOME"])
    """
    run, outcome = run_job(script)
    text = log_text(run)
    assert outcome.state == "succeeded"
    for secret in ("very-secret-key-value", "dbpass", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        assert secret not in text
    assert "CUDA ''" in text and f"/runs/{run.id}/1" in text


def test_limits_are_applied_in_the_child(run_job, log_text, monkeypatch, tmp_path):
    monkeypatch.setattr(cgroup, "V1_MEMORY", tmp_path / "absent")  # without a memory cgroup, memory is RLIMIT_DATA
    monkeypatch.setattr(cgroup, "V2_ROOT", tmp_path / "absent")
    script = """
        import os, resource
        for name in ("NOFILE", "FSIZE", "CORE", "DATA"):
            print(name, resource.getrlimit(getattr(resource, "RLIMIT_" + name))[0])
        print("UID", os.getuid())
    """
    limits = JobLimits(wall_seconds=60, open_files=123, file_bytes=5_000_000, memory_bytes=3_000_000_000)
    run, _ = run_job(script, limits=limits)
    text = log_text(run)
    assert "NOFILE 123" in text and "FSIZE 5000000" in text and "CORE 0" in text and "DATA 3000000000" in text
    if os.geteuid() == 0 and bwrap_path(settings.CONFIG.bwrap) is not None:  # without it the uid drop needs a world-readable venv
        assert "UID 0" not in text


def test_a_fork_bomb_hits_the_process_limit_and_fails(run_job):
    script = """
        import os, time
        while True:
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
                raise
    """
    started = time.monotonic()
    _, outcome = run_job(script, limits=JobLimits(wall_seconds=20, processes=64))
    assert outcome.state == "failed" and "limit of 64 processes" in outcome.reason
    assert time.monotonic() - started < 25


def test_a_huge_file_is_refused_by_the_file_size_limit(run_job):
    script = """
        with open("big.bin", "wb") as f:
            f.seek(10 * 2**30)
            f.write(b"x")
    """
    _, outcome = run_job(script, limits=JobLimits(wall_seconds=20, file_bytes=10_000_000))
    assert outcome.state == "failed" and "File too large" in outcome.reason


def test_a_job_filling_the_disk_with_many_files_is_stopped_at_its_quota(run_job, log_text, settings):
    script = """
        import os, time
        block = os.urandom(64 * 1024)
        for i in range(100_000):
            os.makedirs(f"out/{i // 100}", exist_ok=True)
            with open(f"out/{i // 100}/{i}.bin", "wb") as f:
                f.write(block)
            time.sleep(0.001)
    """
    started = time.monotonic()
    run, outcome = run_job(script, limits=JobLimits(wall_seconds=60, disk_bytes=5_000_000))
    assert outcome.state == "failed" and outcome.reason.startswith("stopped: disk quota exceeded: wrote ")
    assert outcome.reason.endswith(" MB of 5 MB allowed") and outcome.reason in log_text(run)
    assert time.monotonic() - started < 15
    assert not list((settings.CONFIG.data_dir / "runs" / str(run.id)).glob("*/out"))  # the folder is gone


def test_a_job_filling_its_tmp_gets_no_space_left_instead_of_the_hosts_memory(run_job, log_text, monkeypatch):
    require(bwrap_path(settings.CONFIG.bwrap) is not None and sandbox.bwrap_sizes_tmpfs(), "needs bubblewrap 0.7+ (apt-get install bubblewrap)")
    monkeypatch.setattr(sandbox, "JOB_TMP_BYTES", 8 * 2**20)
    script = """
        import tempfile
        assert tempfile.gettempdir() == "/tmp"  # writable by the job, as libraries expect
        block = b"x" * 2**20
        with open("/tmp/fill.bin", "wb") as f:
            for _ in range(64):
                f.write(block)
                f.flush()
    """
    run, outcome = run_job(script, limits=JobLimits(wall_seconds=30))
    assert outcome.state == "failed" and "No space left on device" in log_text(run)


def test_a_job_creating_endless_empty_files_is_stopped_at_its_file_count(run_job):
    script = """
        for i in range(10_000_000):
            open(f"empty-{i}", "w").close()
    """
    _, outcome = run_job(script, limits=JobLimits(wall_seconds=60, disk_files=2000))
    assert outcome.state == "failed" and outcome.reason == "stopped: disk quota exceeded: created more than 2,000 files"


def test_printing_without_end_is_truncated_then_stopped(run_job, log_text):
    script = "line = 'x' * 1000\nwhile True:\n    print(line)\n"
    limits = JobLimits(wall_seconds=60, log_bytes=100_000, log_lines=1000, output_kill_bytes=20_000_000)
    run, outcome = run_job(script, limits=limits)
    assert outcome.state == "failed" and "printed more than 20 MB" in outcome.reason
    assert "log truncated" in log_text(run)
    assert run.log_lines.count() < 200


def test_the_job_has_no_network_under_bubblewrap(run_job, log_text):
    require(bwrap_path(settings.CONFIG.bwrap) is not None, "bubblewrap is not installed (apt-get install bubblewrap)")
    script = """
        import socket
        socket.create_connection(("127.0.0.1", 5432), timeout=2)
    """
    run, outcome = run_job(script)
    assert outcome.state == "failed"
    assert "Connection refused" in outcome.reason or "unreachable" in outcome.reason
    assert "sandbox: bubblewrap" in log_text(run)


def _job_processes(run_id: int) -> list[int]:
    marker = f"/runs/{run_id}/"
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        try:
            if marker in (proc.info["cwd"] or "") or any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc.info["pid"])
        except psutil.Error:
            continue
    return found


@pytest.mark.django_db(transaction=True)
def test_a_stopping_worker_ends_its_jobs_at_once_and_hands_the_run_back(submit_code, claimed, settings, log_text):
    run = claimed(submit_code("import time\nprint('training', flush=True)\ntime.sleep(120)\n"))
    thread, result = _execute_in_background(run, settings, started_when="training", record=True)
    before = _job_processes(run.id)
    try:
        stop_running_jobs(sig="SIGTERM", how="Warm", exitcode=0)  # what Celery's worker_shutting_down sends
        stopped_at = time.monotonic()
        thread.join(timeout=10)
    finally:
        shutdown.reset()
    assert result["outcome"].state == "interrupted" and time.monotonic() - stopped_at < 5
    assert [p for p in before if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"] == []
    run.refresh_from_db()
    assert run.state == RunState.LOST and "worker was stopped" in run.events.last().reason
    assert "the run goes back to the queue" in log_text(run)


def _execute_in_background(run, settings, *, started_when: str, record: bool = False) -> tuple[threading.Thread, dict]:
    """Execute `run` in a thread, as the worker does (its own connection); return once its log shows `started_when`."""
    result: dict = {}

    def work() -> None:
        try:
            result["outcome"] = execute(run, attempt=run.attempt, worker_name="w-test",
                                        data_dir=settings.CONFIG.data_dir, limits=JobLimits(wall_seconds=60))
            if record:
                _record(run.id, run.attempt, result["outcome"], patience=5)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 20
    while not run.log_lines.filter(text__contains=started_when).exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    return thread, result
