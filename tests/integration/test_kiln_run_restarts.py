"""`kiln run` keeps going: unreadable doorbells are set aside, killed children come back, a child
that crashes at every start ends it with a message naming that child, and nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from test_kiln_run import ADMIN_PASSWORD, _start, _wait_for_health

from webapp.client.client import Client

pytestmark = pytest.mark.slow
RECIPE = {"recipe": {"model": "mlp", "dataset": "spirals", "epochs": 1, "hidden_size": 8}}


def _health(base):
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        return json.load(response)


def _pid_of(base, name):
    return _health(base)["supervisor"][name]


def _until(probe, timeout, what, tmp_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout} s:\n" + (tmp_path / "kiln-run.log").read_text()[-6000:])


def _child_pid(tmp_path, name):
    return json.loads((tmp_path / "supervisor.json").read_text())["children"][name]["pid"]


def _run_succeeds(client, tmp_path):
    [run] = client.submit(RECIPE, project="admin/restarts")
    done = client.wait(run["id"], timeout=120, poll=0.5)
    assert done["state"] == "succeeded", (done, (tmp_path / "kiln-run.log").read_text()[-6000:])


def _worker_row(tmp_path):
    with sqlite3.connect(tmp_path / "kiln.sqlite3", timeout=10) as db:
        return db.execute("SELECT restarts, last_error FROM cluster_worker").fetchone()


def _stop_and_check_nothing_is_left(proc, tmp_path):
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    time.sleep(0.5)
    alive = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert alive == [], f"processes left running: {alive}"


def test_bad_message_files_are_set_aside_and_killed_children_come_back(tmp_path, free_port):
    proc, log = _start(tmp_path, free_port, {"KILN_DEMO": "false"})
    base = f"http://127.0.0.1:{free_port}"
    try:
        _wait_for_health(base, proc, tmp_path)
        client = Client.login(base, "admin", ADMIN_PASSWORD)
        client.create_project("restarts")
        queue_dir = tmp_path / "broker" / "queue"
        queue = f"kiln.worker.test-worker-{free_port}"
        (queue_dir / f"1_empty.{queue}.msg").write_bytes(b"")
        (queue_dir / f"2_truncated.{queue}.msg").write_bytes(b'{"body": "W1sxLCAxLCAid29y')
        _until(lambda: len(list((tmp_path / "broker" / "bad").glob("*.msg"))) == 2, 10,
               "the bad message files were not moved aside", tmp_path)
        _run_succeeds(client, tmp_path)
        output = (tmp_path / "kiln-run.log").read_text()
        assert f"skipped an unreadable message file 1_empty.{queue}.msg (empty file)" in output
        assert "Unrecoverable error" not in output

        for name in ("worker", "scheduler", "web"):
            before = _child_pid(tmp_path, name)
            os.killpg(before, signal.SIGKILL)
            killed_at = time.monotonic()
            _until(lambda name=name, before=before: _child_pid(tmp_path, name) not in (None, before)
                   and _health(base)["workers"]["online"] >= 1, 30, f"{name} was not restarted", tmp_path)
            back = _until(lambda: _health(base), 30, f"{name} did not answer again", tmp_path)
            # NOTE: ~3 s here when the machine is quiet (1 s backoff + start-up); the bound allows for a loaded one.
            assert time.monotonic() - killed_at < 10, f"{name} took {time.monotonic() - killed_at:.1f} s to come back"
            assert back["supervisor"][name]["restarts"] == 1
            assert back["supervisor"][name]["last_error"].startswith("killed by SIGKILL")
            _run_succeeds(client, tmp_path)
        assert _worker_row(tmp_path)[0] == 1 and _worker_row(tmp_path)[1].startswith("killed by SIGKILL")
        with sqlite3.connect(tmp_path / "kiln.sqlite3", timeout=10) as db:
            states = [row[0] for row in db.execute("SELECT state FROM experiments_run")]
        assert states == ["succeeded"] * 4
        _stop_and_check_nothing_is_left(proc, tmp_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_a_child_that_crashes_at_every_start_ends_kiln_run_naming_it(tmp_path, free_port):
    with socket.socket() as taken:  # the web server cannot bind its port: a real start-up failure
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        proc, log = _start(tmp_path, free_port, {"KILN_DEMO": "false"})
        try:
            family = [proc.pid]
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                family += [c.pid for c in psutil.Process(proc.pid).children(recursive=True) if c.pid not in family]
                time.sleep(0.5)
            assert proc.wait(timeout=5) == 1
            output = (tmp_path / "kiln-run.log").read_text()
            assert "web crashed 5 times within 60 s; stopping Kiln. Its last error: exit code 1" in output, output
            assert "Connection in use" in output.split("web crashed 5 times")[1].splitlines()[0]
            time.sleep(0.5)
            alive = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
            assert alive == [], f"processes left running: {alive}"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()


_RING = """
import os, sys
import django
django.setup()
from worker.celery_app import make_celery_app, send_run
app = make_celery_app()
first, count, worker = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for run_id in range(first, first + count):
    send_run(app, run_id=run_id, attempt=1, worker_name=worker)
"""


def test_the_embedded_broker_survives_a_stress_of_concurrent_doorbells(tmp_path, free_port):
    """500 doorbells written by 4 processes at once while runs are going through: no consumer crash,
    nothing unreadable, every message consumed, and every real run succeeds."""
    proc, log = _start(tmp_path, free_port, {"KILN_DEMO": "false"})
    base = f"http://127.0.0.1:{free_port}"
    worker = f"test-worker-{free_port}"
    try:
        _wait_for_health(base, proc, tmp_path)
        client = Client.login(base, "admin", ADMIN_PASSWORD)
        client.create_project("restarts")
        worker_pid = _child_pid(tmp_path, "worker")
        env = {**os.environ, "KILN_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
        env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        writers = [subprocess.Popen([sys.executable, "-c", _RING, str(10**9 + 125 * i), "125", worker], env=env)
                   for i in range(4)]
        runs = [client.submit(RECIPE, project="admin/restarts")[0] for _ in range(6)]
        assert [writer.wait(timeout=120) for writer in writers] == [0] * 4
        for run in runs:
            done = client.wait(run["id"], timeout=180, poll=0.5)
            assert done["state"] == "succeeded", (done, (tmp_path / "kiln-run.log").read_text()[-6000:])
        queue_dir = tmp_path / "broker" / "queue"
        _until(lambda: not list(queue_dir.glob(f"*.kiln.worker.{worker}.msg")), 120,
               "the doorbells were not all consumed", tmp_path)
        assert not list((tmp_path / "broker" / "bad").glob("*")), "a message was written or read half-way"
        assert _child_pid(tmp_path, "worker") == worker_pid, "the worker was restarted"
        assert _health(base)["supervisor"]["worker"]["restarts"] == 0
        _stop_and_check_nothing_is_left(proc, tmp_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
