"""A small world for dashboard tests: a project shared with a team (one user per role), an outsider,
finished runs with curves, and a sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from webapp.accounts.models import Role
from webapp.experiments.models import Run, RunState, Sweep
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project, Visibility
from webapp.projects.services import project_set_visibility

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

ACTORS = ("owner", "viewer", "editor", "admin", "outsider", "anonymous")
SEES = ("owner", "viewer", "editor", "admin")
EDITS = ("owner", "editor", "admin")


@dataclass
class World:
    project: Project
    runs: list[Run]
    sweep: Sweep
    sweep_runs: list[Run]
    users: dict

    def client(self, actor: str) -> Client:
        client = Client()
        if actor != "anonymous":
            client.force_login(self.users[actor])
        return client

    @property
    def run_ids(self) -> str:
        return ",".join(str(run.id) for run in self.runs)


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Each test gets an empty in-process cache, whatever the shared one holds (and fast test passwords)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dashboards-tests"}}
    from django.core.cache import cache

    cache.clear()


def finish(run: Run, *, minutes_ago: int = 0, state: str = RunState.SUCCEEDED) -> Run:
    Run.objects.filter(id=run.id).update(state=state, finished_at=timezone.now() - timedelta(minutes=minutes_ago))
    run.refresh_from_db()
    return run


def log_curve(run: Run, key: str, values: list[float], *, start: int = 0, every: int = 1, t0: float = 1_700_000_000.0) -> None:
    points = [MetricPoint(key, start + i * every, v, t0 + (start + i * every) * 0.5) for i, v in enumerate(values)]
    for i in range(0, len(points), 10_000):
        metrics_log(run_id=run.id, points=points[i : i + 10_000])


@pytest.fixture
def world(db) -> World:
    team = TeamFactory()
    users = {role: MembershipFactory(team=team, role=role).user for role in Role.values}
    owner = UserFactory(username="olive")
    MembershipFactory(team=team, user=owner, role=Role.VIEWER)
    users["owner"] = owner
    users["outsider"] = UserFactory(username="oscar")
    project = ProjectFactory(owner_user=owner, name="Vision", slug="vision")
    project_set_visibility(user=owner, project=project, visibility=Visibility.TEAM, team=team)

    runs = []
    for i, lr in enumerate((0.1, 0.01, 0.001)):
        spec = {"name": f"lr-{lr}", "recipe": {"model": "mlp", "optimizer": {"lr": lr}}}
        run = run_submit(user=owner, project=project, spec=spec).runs[0]
        log_curve(run, "loss", [2.0 / (1 + step * (i + 1) * 0.1) for step in range(50)])
        log_curve(run, "epoch", [float(e) for e in range(5)], every=10)
        runs.append(finish(run, minutes_ago=10 - i))

    sweep_spec = {"name": "lr sweep", "recipe": {"model": "mlp"}, "sweep": {"parameters": {"optimizer.lr": {"values": [0.3, 0.03, 0.003]}}}}
    submitted = run_submit(user=owner, project=project, spec=sweep_spec)
    for i, (run, final) in enumerate(zip(submitted.runs, (1.5, 0.5, 0.9), strict=True)):
        log_curve(run, "loss", [final + 1.0, final])
        finish(run, minutes_ago=3 - i)
    assert submitted.sweep is not None
    return World(project=project, runs=runs, sweep=submitted.sweep, sweep_runs=submitted.runs, users=users)


def public(world: World) -> str:
    project_set_visibility(user=world.users["owner"], project=world.project, visibility=Visibility.PUBLIC)
    world.project.refresh_from_db()
    assert world.project.public_token
    return world.project.public_token

