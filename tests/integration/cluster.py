"""A real Kiln cluster for integration tests: `kiln scheduler` and `kiln worker` subprocesses on
the test database, driven through the services from the test process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from services import in_ci, reachable

from webapp.cluster.models import Worker
from webapp.experiments.models import Run
from webapp.experiments.submit import CodeUpload, run_submit
from worker.sandbox import bwrap_path

TEST_SECRET_KEY = "integration-secret-key-that-must-never-reach-a-job"
CLUSTER_DISK_QUOTA = "20 MB"  # per run (KILN_RUN_DISK_QUOTA_GB), small so a hostile job reaches it fast


class Cluster:
    def __init__(self, data_dir: Path, database_url: str, redis_url: str | None):
        self.data_dir = data_dir
        self.project: Any = None
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
        self.env.update(
            DATABASE_URL=database_url, KILN_DATA_DIR=str(data_dir), SECRET_KEY=TEST_SECRET_KEY,
            KILN_HEARTBEAT_SECONDS="0.5", KILN_WORKER_TIMEOUT="4", KILN_SCHEDULER_TICK="0.5",
            KILN_RUN_DISK_QUOTA_GB="0.02",
        )
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        if bwrap_path(settings.CONFIG.bwrap) is None:  # no isolation to be had here: these tests opt out, as a single-user machine would
            self.env["KILN_ALLOW_UNISOLATED_CODE"] = "1"
        self.role_env: dict[str, dict[str, str]] = {}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, role: str, name: str | None = None) -> str:
        """Start `kiln scheduler` or `kiln worker`; returns the process's name in this cluster.

        `role_env[role]` overrides variables for that role (e.g. a worker reaching the database
        through a proxy)."""
        name = name or f"{role}-{uuid.uuid4().hex[:8]}"
        self.spawn(role, name, key=name)
        if role == "worker":
            self.wait_workers([name])
        return name

    def spawn(self, role: str, name: str, *, key: str) -> subprocess.Popen:
        """Start process `key` (its log is `<key>.log`) as `kiln <role>` named `name`; returns at once.

        Two processes may share a name (a worker started twice, a restart overlapping the old process)."""
        env = {**self.env, **self.role_env.get(role, {}), "KILN_WORKER_NAME": name}
        log = open(self.data_dir / f"{key}.log", "ab")
        self.procs[key] = subprocess.Popen(
            [sys.executable, "-m", "webapp.client.cli", role], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self.procs[key]

    def stop(self, key: str, timeout: float = 30) -> int:
        """SIGTERM process `key` (a clean stop: Ctrl-C, `docker stop`) and wait for it; returns its exit code."""
        proc = self.procs.pop(key)
        os.killpg(proc.pid, signal.SIGTERM)
        return proc.wait(timeout=timeout)

    def wait_workers(self, names: list[str] | None = None) -> None:
        """Until the named workers (default: every worker started) are registered and heartbeating."""
        names = names or [n for n in self.procs if n.startswith("worker-")]
        wait_for(lambda: Worker.objects.filter(name__in=names, stopped_at__isnull=True).count() == len(names), 60,
                 f"workers {names} never registered", self.logs)

    def kill(self, name: str) -> None:
        """SIGKILL a process (and its process group): a machine dying, not a clean stop."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def submit(self, source: str, *, params: dict | None = None, max_minutes: int = 5,
               memory_gb: float | None = None) -> Run:
        resources: dict = {"max_minutes": max_minutes}
        if memory_gb is not None:
            resources["memory_gb"] = memory_gb
        spec = {"params": params or {}, "resources": resources}
        code = CodeUpload(filename="main.py", data=textwrap.dedent(source).encode())
        return run_submit(user=self.project.owner_user, project=self.project, spec=spec, code=code).runs[0]

    def wait_state(self, run: Run, states: tuple[str, ...], timeout: float) -> Run:
        wait_for(lambda: Run.objects.filter(id=run.id, state__in=states).exists(), timeout,
                 f"run {run.id} never reached {states}", lambda: self._run_story(run))
        run.refresh_from_db()
        return run

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.data_dir.glob("*.log"))

    def _run_story(self, run: Run) -> str:
        run.refresh_from_db()
        events = list(run.events.values_list("from_state", "to_state", "reason"))
        lines = list(run.log_lines.order_by("seq").values_list("text", flat=True))[-30:]
        return f"state={run.state} pending={run.pending_reason!r}\nevents={events}\nlog={lines}\n{self.logs()}"


def wait_for(condition: Callable[[], bool], timeout: float, message: str, details: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout:.0f} s\n{details()}")
        time.sleep(0.1)


def database_url_for(name: str, base_url: str) -> str:
    """The same server as DATABASE_URL, but the database pytest-django created."""
    return urlunparse(urlparse(base_url)._replace(path=f"/{name}"))


def through_proxy(url: str, port: int) -> str:
    """The same database URL, reached through a local proxy on `port`."""
    parsed = urlparse(url)
    user = f"{parsed.username}@" if parsed.username else ""
    return urlunparse(parsed._replace(netloc=f"{user}127.0.0.1:{port}"))


def job_processes(run_id: int) -> list[int]:
    """Live processes working in a run's folder (the job and anything it started)."""
    marker = f"/runs/{run_id}/"
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if marker in (proc.info["cwd"] or "") or any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc.info["pid"])
        except psutil.Error:
            continue
    return found


def postgres_url() -> str:
    """DATABASE_URL when it is a PostgreSQL server that answers; else skip (fail in CI)."""
    base_url = os.environ.get("DATABASE_URL", "")
    if not (base_url.startswith("postgres") and reachable(base_url, 5432)):
        message = "the worker integration tests need PostgreSQL (set DATABASE_URL)"
        pytest.fail(message) if in_ci() else pytest.skip(message)
    return base_url


@contextlib.contextmanager
def running_cluster(django_db_blocker, data_dir: Path, redis_url: str | None,
                    role_env: dict[str, dict[str, str]] | None = None) -> Iterator[Cluster]:
    """A scheduler and a worker on the test database; flushed and stopped at the end."""
    base_url = postgres_url()
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage",
               "OPTIONS": {"location": str(data_dir / "artifacts")}}
    with django_db_blocker.unblock(), override_settings(STORAGES={"default": storage, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
        stack = Cluster(data_dir, database_url_for(connection.settings_dict["NAME"], base_url), redis_url)
        stack.role_env = role_env or {}
        try:
            stack.start("scheduler")
            stack.start("worker")
            yield stack
        finally:
            stack.stop_all()
            connection.close()
            call_command("flush", interactive=False, verbosity=0)
