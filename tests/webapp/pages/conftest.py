"""A small world for page tests: a project shared with a team, one user per role, an outsider."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from webapp.accounts.models import Role
from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, artifact_store, logs_append, metrics_log
from webapp.experiments.submit import CodeUpload, run_submit
from webapp.projects.models import Project, Visibility
from webapp.projects.services import project_set_visibility

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

ACTORS = ("owner", "viewer", "editor", "admin", "outsider", "anonymous")
MEMBERS = ("owner", "viewer", "editor", "admin")
SCRIPT = b"import engine.track as track\nfor step in range(3):\n    track.log({'loss': 1.0 / (step + 1)}, step=step)\n"


@dataclass
class World:
    project: Project
    run: Run
    code_run: Run
    users: dict

    def client(self, actor: str, **kwargs) -> Client:
        client = Client(**kwargs)
        if actor != "anonymous":
            client.force_login(self.users[actor])
        return client


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test speed only


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }


@pytest.fixture
def world(db) -> World:
    """`owner`'s project shared with a team holding a viewer, an editor and an admin (capped at edit)."""
    team = TeamFactory()
    users = {role: MembershipFactory(team=team, role=role).user for role in Role.values}
    owner = UserFactory(username="olive")
    MembershipFactory(team=team, user=owner, role=Role.VIEWER)
    users["owner"] = owner
    users["outsider"] = UserFactory(username="oscar")
    project = ProjectFactory(owner_user=owner, name="Vision", slug="vision")
    project_set_visibility(user=owner, project=project, visibility=Visibility.TEAM, team=team)
    spec = {"name": "baseline", "recipe": {"model": "mlp", "optimizer": {"lr": 0.01}}, "tags": ["baseline"]}
    run = run_submit(user=owner, project=project, spec=spec).runs[0]
    metrics_log(run_id=run.id, points=[MetricPoint("loss", step, 1.0 / (step + 1), 1000.0 + step) for step in range(5)])
    logs_append(run_id=run.id, lines=[(seq, "stdout", f"epoch {seq}") for seq in range(3)])
    artifact_store(run_id=run.id, name="model.safetensors", kind="checkpoint", file=ContentFile(b"weights", name="m"), step=4)
    code_run = run_submit(user=owner, project=project, spec={"params": {"lr": 0.1}}, code=CodeUpload("train.py", SCRIPT)).runs[0]
    return World(project=project, run=run, code_run=code_run, users=users)


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
