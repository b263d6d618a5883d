"""`kiln run` keeps going: unreadable doorbells are set aside, killed children come back, a child
that crashes at every start ends it with a message naming that child, and nothing is left running.

One `kiln run` (the module's `embedded` fixture) serves the tests that keep it running; each compares
what it checks with what it found at its start, so they pass alone or in any order. Stopping it with
Ctrl-C at the end of the module is checked too: every process, restarted ones included, is gone.
"""

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
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from test_kiln_run import ADMIN_PASSWORD, _start, _wait_for_health

from webapp.client.client import Client

pytestmark = pytest.mark.slow
RECIPE = {"recipe": {"model": "mlp", "dataset": "spirals", "epochs": 1, "hidden_size": 8}}


@dataclass
class Embedded:
    proc: subprocess.Popen
    data_dir: Path
    base: str
    worker: str
    client: Client | None = None
    submitted: list[int] = field(default_factory=list)  # every run the module's tests submitted


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A `kiln run` on the filesystem broker with the admin's project `restarts`; Ctrl-C'd and checked at the end."""
    data_dir = tmp_path_factory.mktemp("kiln-run")
    port = _free_port()
    proc, log = _start(data_dir, port, {"KILN_DEMO": "false"})
    kiln = Embedded(proc, data_dir, f"http://127.0.0.1:{port}", f"test-worker-{port}")
    try:
        _wait_for_health(kiln.base, proc, data_dir)
        kiln.client = Client.login(kiln.base, "admin", ADMIN_PASSWORD)
        kiln.client.create_project("restarts")
        yield kiln
        _stop_and_check_nothing_is_left(proc, data_dir)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _health(base):
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        return json.load(response)


def _until(probe, timeout, what, data_dir):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout} s:\n" + (data_dir / "kiln-run.log").read_text()[-6000:])


def _child_pid(data_dir, name):
    return json.loads((data_dir / "supervisor.json").read_text())["children"][name]["pid"]


def _submit(kiln):
    [run] = kiln.client.submit(RECIPE, project="admin/restarts")
    kiln.submitted.append(run["id"])
    return run


def _run_succeeds(kiln):
    done = kiln.client.wait(_submit(kiln)["id"], timeout=120, poll=0.25)
    assert done["state"] == "succeeded", (done, (kiln.data_dir / "kiln-run.log").read_text()[-6000:])


def _worker_row(data_dir):
    with sqlite3.connect(data_dir / "kiln.sqlite3", timeout=10) as db:
        return db.execute("SELECT restarts, last_error FROM cluster_worker").fetchone()


def _run_states(data_dir) -> dict[int, str]:
    with sqlite3.connect(data_dir / "kiln.sqlite3", timeout=10) as db:
        return dict(db.execute("SELECT id, state FROM experiments_run"))


def _bad_files(data_dir) -> set[str]:
    return {path.name for path in (data_dir / "broker" / "bad").glob("*")}


def _stop_and_check_nothing_is_left(proc, data_dir):
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0, (data_dir / "kiln-run.log").read_text()[-6000:]
    time.sleep(0.5)
    alive = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert alive == [], f"processes left running: {alive}"


def test_bad_message_files_are_set_aside_and_killed_children_come_back(embedded):
    kiln, data_dir = embedded, embedded.data_dir
    queue_dir = data_dir / "broker" / "queue"
    queue = f"kiln.worker.{kiln.worker}"
    bad = {f"1_empty.{queue}.msg", f"2_truncated.{queue}.msg"}
    (queue_dir / f"1_empty.{queue}.msg").write_bytes(b"")
    (queue_dir / f"2_truncated.{queue}.msg").write_bytes(b'{"body": "W1sxLCAxLCAid29y')
    _until(lambda: bad <= _bad_files(data_dir), 10, "the bad message files were not moved aside", data_dir)
    _run_succeeds(kiln)
    output = (data_dir / "kiln-run.log").read_text()
    assert f"skipped an unreadable message file 1_empty.{queue}.msg (empty file)" in output
    assert "Unrecoverable error" not in output

    worker_restarts = _worker_row(data_dir)[0]
    for name in ("worker", "scheduler", "web"):
        before = _child_pid(data_dir, name)
        restarts = _health(kiln.base)["supervisor"][name]["restarts"]
        os.killpg(before, signal.SIGKILL)
        killed_at = time.monotonic()
        _until(lambda name=name, before=before: _child_pid(data_dir, name) not in (None, before)
               and _health(kiln.base)["workers"]["online"] >= 1, 30, f"{name} was not restarted", data_dir)
        back = _until(lambda: _health(kiln.base), 30, f"{name} did not answer again", data_dir)
        # NOTE: ~3 s here when the machine is quiet (1 s backoff + start-up); the bound allows for a loaded one.
        assert time.monotonic() - killed_at < 10, f"{name} took {time.monotonic() - killed_at:.1f} s to come back"
        assert back["supervisor"][name]["restarts"] == restarts + 1
        assert back["supervisor"][name]["last_error"].startswith("killed by SIGKILL")
        _run_succeeds(kiln)
    restarts_row, last_error = _worker_row(data_dir)
    assert restarts_row == worker_restarts + 1 and last_error.startswith("killed by SIGKILL")
    states = _run_states(data_dir)  # the bad files made no run, and no run of the module failed or is left
    assert sorted(states) == sorted(kiln.submitted) and set(states.values()) == {"succeeded"}, states


def test_a_child_that_crashes_at_every_start_ends_kiln_run_naming_it(tmp_path, free_port):
    # A gunicorn config file that is not there: the web child fails at every start, in a second rather than
    # the five gunicorn spends retrying a port in use, while the scheduler and the worker start normally.
    config = tmp_path / "missing" / "gunicorn.conf.py"
    proc, log = _start(tmp_path, free_port, {"KILN_DEMO": "false", "GUNICORN_CMD_ARGS": f"--config {config}"})
    try:
        family = [proc.pid]
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            family += [c.pid for c in psutil.Process(proc.pid).children(recursive=True) if c.pid not in family]
            time.sleep(0.5)
        assert proc.wait(timeout=5) == 1
        output = (tmp_path / "kiln-run.log").read_text()
        assert "web crashed 5 times within 60 s; stopping Kiln. Its last error: exit code 1" in output, output
        assert f"Error: '{config}' doesn't exist" in output.split("web crashed 5 times")[1].splitlines()[0]
        assert "started scheduler" in output and "started worker" in output
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


def test_the_embedded_broker_survives_a_stress_of_concurrent_doorbells(embedded):
    """500 doorbells written by 4 processes at once while runs are going through: no consumer crash,
    nothing unreadable, every message consumed, and every real run succeeds."""
    kiln, data_dir = embedded, embedded.data_dir
    worker_pid = _child_pid(data_dir, "worker")
    worker_restarts = _health(kiln.base)["supervisor"]["worker"]["restarts"]
    bad_before = _bad_files(data_dir)
    env = {**os.environ, "KILN_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    writers = [subprocess.Popen([sys.executable, "-c", _RING, str(10**9 + 125 * i), "125", kiln.worker], env=env)
               for i in range(4)]
    runs = [_submit(kiln) for _ in range(6)]
    assert [writer.wait(timeout=120) for writer in writers] == [0] * 4
    for run in runs:
        done = kiln.client.wait(run["id"], timeout=180, poll=0.25)
        assert done["state"] == "succeeded", (done, (data_dir / "kiln-run.log").read_text()[-6000:])
    queue_dir = data_dir / "broker" / "queue"
    _until(lambda: not list(queue_dir.glob(f"*.kiln.worker.{kiln.worker}.msg")), 120,
           "the doorbells were not all consumed", data_dir)
    assert _bad_files(data_dir) == bad_before, "a message was written or read half-way"
    assert _child_pid(data_dir, "worker") == worker_pid, "the worker was restarted"
    assert _health(kiln.base)["supervisor"]["worker"]["restarts"] == worker_restarts
