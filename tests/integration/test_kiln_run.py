"""`kiln run` (what `make run` starts): serves the login page, the admin logs in, Ctrl-C stops all."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import psutil
import pytest

pytestmark = pytest.mark.slow
ADMIN_PASSWORD = "kiln-test-admin-pw"


def _start(tmp_path, port, extra_env):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        KILN_DATA_DIR=str(tmp_path),
        KILN_ADMIN_USER="admin",
        KILN_ADMIN_PASSWORD=ADMIN_PASSWORD,
        KILN_HEARTBEAT_SECONDS="1",
        KILN_SCHEDULER_TICK="0.5",  # runs are placed within half a second, not two
        KILN_WORKER_NAME=f"test-worker-{port}",
        **extra_env,
    )
    log = open(tmp_path / "kiln-run.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "webapp.client.cli", "run", "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    return proc, log


def _wait_for_health(base, proc, tmp_path, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "kiln-run.log").read_text()
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                body = json.load(response)
            if body["workers"]["online"] >= 1:
                return body
        except OSError:  # refused, reset, or a read timing out on a loaded machine
            pass
        time.sleep(0.5)
    pytest.fail("kiln run never became healthy:\n" + (tmp_path / "kiln-run.log").read_text())


def _log_in(base):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/", timeout=10).read().decode()
    assert "Log in to Kiln" in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "admin", "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": token, "next": "/"}
    ).encode()
    request = urllib.request.Request(f"{base}/accounts/login/", data=form, headers={"Referer": f"{base}/"})
    return opener.open(request, timeout=10).read().decode()


def _demo_run_states(tmp_path) -> list[str]:
    with sqlite3.connect(tmp_path / "kiln.sqlite3", timeout=10) as db:
        return [row[0] for row in db.execute("SELECT state FROM experiments_run ORDER BY number")]


def _failure_reasons(tmp_path) -> list[tuple]:
    with sqlite3.connect(tmp_path / "kiln.sqlite3", timeout=10) as db:
        runs = list(db.execute("SELECT id, name, failure_reason FROM experiments_run WHERE state = 'failed'"))
        logs = list(db.execute("SELECT run_id, text FROM experiments_logline ORDER BY run_id, seq"))
    return [*runs, *logs]


def _wait_for_a_finished_demo_run(tmp_path, timeout=180) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = _demo_run_states(tmp_path)
        if "failed" in states or "succeeded" in states:
            return states
        time.sleep(0.25)
    pytest.fail(f"no demo run finished: {_demo_run_states(tmp_path)}\n" + (tmp_path / "kiln-run.log").read_text())


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_kiln_run_serves_login_and_stops_every_process_on_ctrl_c(tmp_path, free_port, broker, request):
    # The embedded default (filesystem broker) also submits the demo runs; the Redis variant skips them.
    extra = {"REDIS_URL": request.getfixturevalue("redis_url"), "KILN_DEMO": "false"} if broker == "redis" else {}
    proc, log = _start(tmp_path, free_port, extra)
    base = f"http://127.0.0.1:{free_port}"
    try:
        health = _wait_for_health(base, proc, tmp_path)
        assert health["status"] == "ok"
        assert health["database"] == {"ok": True, "vendor": "sqlite"}
        assert health["broker"]["transport"] == broker
        family = [proc.pid] + [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        assert len(family) >= 4  # supervisor, web (+ gunicorn workers), scheduler, worker

        home = _log_in(base)
        assert "Welcome, admin" in home
        if broker == "filesystem":
            states = _wait_for_a_finished_demo_run(tmp_path)
            assert len(states) == 5 and "failed" not in states, _failure_reasons(tmp_path)
        else:
            assert _demo_run_states(tmp_path) == []

        proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        alive = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        assert alive == [], f"processes left running: {alive}"
        output = (tmp_path / "kiln-run.log").read_text()
        assert "scheduler idle" in output and "idle: waiting for runs" in output
        assert "signed off" in output
        if broker == "filesystem":  # a demo run still training was stopped and handed back, not left running
            assert "running" not in _demo_run_states(tmp_path), _demo_run_states(tmp_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_kiln_run_refuses_an_address_in_use_at_once_and_touches_nothing(tmp_path, free_port):
    holder = socket.socket()
    holder.bind(("127.0.0.1", free_port))
    holder.listen()
    try:
        proc, log = _start(tmp_path, free_port, {})
        code = proc.wait(timeout=60)
    finally:
        holder.close()
    log.close()
    text = (tmp_path / "kiln-run.log").read_text()
    assert code == 1, text
    assert f"can't serve on 127.0.0.1:{free_port}: the address is already in use" in text
    assert "Kiln is starting" not in text
    assert not any(tmp_path.glob("*.sqlite3")), "nothing may be created before the address is checked"
