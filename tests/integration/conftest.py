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
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "webapp"))
from cluster import Cluster, database_url_for
from factories import ProjectFactory
from services import in_ci, reachable


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    base_url = os.environ.get("DATABASE_URL", "")
    if not (base_url.startswith("postgres") and reachable(base_url, 5432)):
        message = "the worker integration tests need PostgreSQL (set DATABASE_URL)"
        pytest.fail(message) if in_ci() else pytest.skip(message)
    redis_url = os.environ.get("REDIS_URL") or None
    if redis_url and not reachable(redis_url, 6379):
        redis_url = None
    data_dir = tmp_path_factory.mktemp("kiln-cluster")
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage",
               "OPTIONS": {"location": str(data_dir / "artifacts")}}
    with django_db_blocker.unblock(), override_settings(STORAGES={"default": storage, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}):
        stack = Cluster(data_dir, database_url_for(connection.settings_dict["NAME"], base_url), redis_url)
        try:
            stack.start("scheduler")
            stack.start("worker")
            yield stack
        finally:
            stack.stop_all()
            connection.close()
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def kiln(cluster, transactional_db):
    """The module's cluster with a fresh project, its worker online again after the last flush."""
    cluster.project = ProjectFactory()
    cluster.wait_workers()
    return cluster
