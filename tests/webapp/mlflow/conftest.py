"""A live Kiln (pytest-django's live_server, real HTTP) that the real MLflow client logs into."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import pytest

from webapp.accounts.tokens import token_create

from ..factories import ProjectFactory, UserFactory

mlflow = pytest.importorskip("mlflow", reason="the dev extra installs mlflow-skinny")


@dataclass
class Kiln:
    url: str
    user: Any
    token: str


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "storage")}},
    }
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # an error answers at once, not after backoff
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    from mlflow.tracking import fluent
    from mlflow.utils import request_utils

    cached = request_utils._cached_get_request_session
    sessions = []

    def recorded(*args, **kwargs):
        session = cached(*args, **kwargs)
        sessions.append(session)
        return session

    monkeypatch.setattr(request_utils, "_cached_get_request_session", recorded)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    # NOTE: the client's keep-alive sockets keep a live-server thread, and so its database connection, open
    for session in sessions:
        session.close()
    cached.cache_clear()
    gc.collect()  # a streamed download the client never closed holds its socket (and a server thread) until collected


@pytest.fixture
def kiln(live_server, monkeypatch) -> Kiln:
    """A user with an API token; the MLflow client points at the live Kiln with it (MLFLOW_TRACKING_TOKEN)."""
    user = UserFactory(username="grace")
    token = token_create(user=user, name="mlflow")[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    mlflow.set_tracking_uri(live_server.url)
    return Kiln(url=live_server.url, user=user, token=token)


@pytest.fixture
def project_factory():
    return ProjectFactory
