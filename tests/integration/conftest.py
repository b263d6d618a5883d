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
from pathlib import Path

import pytest

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
