"""A live Kiln server (pytest-django's live_server, real HTTP) with a user, a project and a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from webapp.accounts.tokens import token_create

from ..webapp.factories import ProjectFactory, UserFactory

PASSWORD = "pw-for-tests-123"


@dataclass
class Server:
    url: str
    user: Any
    project: Any
    token: str

    @property
    def project_path(self) -> str:
        return f"{self.user.username}/{self.project.slug}"


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "storage")}},
    }
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}}
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("KILN_URL", raising=False)
    monkeypatch.delenv("KILN_TOKEN", raising=False)


@pytest.fixture
def server(live_server) -> Server:
    user = UserFactory(username="grace")
    project = ProjectFactory(owner_user=user, slug="vision", name="Vision")
    return Server(url=live_server.url, user=user, project=project, token=token_create(user=user, name="tests")[1])
