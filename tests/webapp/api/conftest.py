"""A small world for API tests: a project shared with a team, one user per role, an outsider, tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from webapp.accounts.models import Role
from webapp.accounts.tokens import token_create
from webapp.experiments.submit import run_submit
from webapp.projects.models import Visibility
from webapp.projects.services import project_set_visibility

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

ACTORS = ("owner", "viewer", "editor", "admin", "outsider", "anonymous")


class Api:
    """Django's test client speaking JSON with a bearer token."""

    def __init__(self, token: str | None = None):
        self.client = Client()
        self.token = token

    def _headers(self, token: str | None) -> dict[str, str]:
        token = token if token is not None else self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict | None = None, *, token: str | None = None) -> Any:
        return self.client.get(path, params or {}, headers=self._headers(token))

    def post(self, path: str, body: Any = None, *, token: str | None = None) -> Any:
        return self.client.post(path, json.dumps(body or {}), content_type="application/json", headers=self._headers(token))

    def multipart(self, path: str, data: dict, *, token: str | None = None) -> Any:
        return self.client.post(path, data, headers=self._headers(token))

    def patch(self, path: str, body: Any, *, token: str | None = None) -> Any:
        return self.client.patch(path, json.dumps(body), content_type="application/json", headers=self._headers(token))

    def delete(self, path: str, *, token: str | None = None) -> Any:
        return self.client.delete(path, headers=self._headers(token))

    def as_(self, token: str | None) -> Api:
        return Api(token)


@dataclass
class World:
    project: Any
    team: Any
    users: dict[str, Any]
    tokens: dict[str, str | None]

    @property
    def path(self) -> str:
        return f"{self.project.owner_user.username}/{self.project.slug}"

    def api(self, actor: str) -> Api:
        return Api(self.tokens[actor])

    def submit(self, spec: dict | None = None, *, user: Any = None) -> Any:
        spec = spec or {"recipe": {"model": "mlp"}}
        return run_submit(user=user or self.users["owner"], project=self.project, spec=spec).runs[0]


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Artifacts in a temp folder; rate-limit counters in a private cache; fast password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "storage")}},
    }
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}}


@pytest.fixture
def world(db) -> World:
    """`owner`'s project shared with a team where viewer/editor/admin hold those roles (owner is a viewer there)."""
    team = TeamFactory()
    owner = UserFactory(username="olive")
    MembershipFactory(team=team, user=owner, role=Role.VIEWER)
    users = {"owner": owner}
    for role in (Role.VIEWER, Role.EDITOR, Role.ADMIN):
        users[str(role)] = MembershipFactory(team=team, role=role).user
    users["outsider"] = UserFactory()
    project = ProjectFactory(owner_user=owner, slug="mnist", name="MNIST")
    project_set_visibility(user=owner, project=project, visibility=Visibility.TEAM, team=team)
    tokens: dict[str, str | None] = {name: token_create(user=user, name="tests")[1] for name, user in users.items()}
    tokens["anonymous"] = None
    return World(project=project, team=team, users={**users, "anonymous": None}, tokens=tokens)


@pytest.fixture
def api() -> Api:
    return Api()
