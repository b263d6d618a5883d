"""The `cluster` fixture: a scheduler and a worker per test module, on the test database.

Tests use `transactional_db`, so what they write is committed and the cluster's processes
see it; the flush after each test also removes the worker's row, which re-registers at its
next heartbeat.

The database must be PostgreSQL (subprocesses cannot share pytest-django's in-memory
SQLite); without it these tests skip, and fail in CI. Redis is used when it answers,
else kombu's filesystem transport in the cluster's data folder.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.core.management.commands import flush

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "webapp"))
from cluster import running_cluster
from factories import ProjectFactory
from services import reachable


class FakeCelery:
    """Records the doorbells a scheduler tick sends instead of ringing them."""

    def __init__(self):
        self.sent: list[tuple[str, list, str]] = []

    def send_task(self, name, args, queue):
        self.sent.append((name, args, queue))


DEADLOCK_RETRIES = 5


def _flush_retrying_deadlocks(handle):
    """The flush after a test TRUNCATEs every table while the cluster's scheduler and worker are still
    running; PostgreSQL may pick the TRUNCATE as a deadlock's victim (its rollback leaves nothing behind),
    so it is tried again. Any other error is raised as it is."""

    def retrying(self, **options):
        for attempt in range(DEADLOCK_RETRIES):
            try:
                return handle(self, **options)
            except CommandError as error:
                if not _is_deadlock(error) or attempt == DEADLOCK_RETRIES - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))

    return retrying


def _is_deadlock(error: BaseException | None) -> bool:
    while error is not None:
        if getattr(error, "sqlstate", None) == "40P01":  # psycopg's DeadlockDetected
            return True
        error = error.__cause__
    return False


flush.Command.handle = _flush_retrying_deadlocks(flush.Command.handle)


@pytest.fixture
def app():
    return FakeCelery()


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    redis_url = os.environ.get("REDIS_URL") or None
    if redis_url and not reachable(redis_url, 6379):
        redis_url = None
    with running_cluster(django_db_blocker, tmp_path_factory.mktemp("kiln-cluster"), redis_url) as stack:
        yield stack


@pytest.fixture
def kiln(cluster, transactional_db):
    """The module's cluster with a fresh project, its worker online again after the last flush."""
    cluster.project = ProjectFactory()
    cluster.wait_workers()
    return cluster
