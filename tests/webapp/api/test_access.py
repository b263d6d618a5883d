"""Every endpoint for the owner, each team role, an outsider and anonymous: outsiders get 404, anonymous 401."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile

from webapp.accounts.models import Membership, TeamInvitation
from webapp.experiments.lifecycle import run_cancel
from webapp.experiments.models import Artifact, Metric, Run
from webapp.experiments.results import MetricPoint, artifact_store, logs_append, metrics_log
from webapp.projects.models import Project

from ..factories import MembershipFactory, UserFactory
from .conftest import ACTORS

READ = {"owner": 200, "viewer": 200, "editor": 200, "admin": 200, "outsider": 404, "anonymous": 401}
EDIT_OK = {"owner": 200, "viewer": 403, "editor": 200, "admin": 200, "outsider": 404, "anonymous": 401}
CREATE = {**EDIT_OK, "owner": 201, "editor": 201, "admin": 201}
DELETE = {**EDIT_OK, "owner": 204, "editor": 204, "admin": 204}
# The project is the owner's, shared with the team: team admins edit it but never administer it.
ADMIN_ONLY = {"owner": 200, "viewer": 403, "editor": 403, "admin": 403, "outsider": 404, "anonymous": 401}
TEAM_ADMIN = {"owner": 403, "viewer": 403, "editor": 403, "admin": 201, "outsider": 404, "anonymous": 401}
TEAM_ADMIN_OK = {**TEAM_ADMIN, "admin": 200}
TEAM_ADMIN_DELETE = {**TEAM_ADMIN, "admin": 204}


def _finished_run(world):
    run = world.submit()
    run_cancel(user=world.users["owner"], run=run)
    return run


def _run_with_results(world):
    run = world.submit()
    metrics_log(run_id=run.id, points=[MetricPoint("loss", i, 1.0 / (i + 1), 1000.0 + i) for i in range(5)])
    logs_append(run_id=run.id, lines=[(0, "stdout", "hello")])
    artifact_store(run_id=run.id, name="out.txt", kind="artifact", file=ContentFile(b"data", name="out.txt"))
    return run


# (name, expected statuses, build(world) -> (method, path, payload)); building may create data first.
CASES = [
    ("list projects", READ | {"outsider": 200}, lambda w: ("get", "/api/projects", None)),  # an empty list
    ("get project by path", READ, lambda w: ("get", f"/api/projects/{w.path}", None)),
    ("get project by id", READ, lambda w: ("get", f"/api/projects/{w.project.id}", None)),
    ("change visibility", ADMIN_ONLY, lambda w: ("patch", f"/api/projects/{w.path}", {"visibility": "team"})),
    ("list runs", READ, lambda w: ("get", "/api/runs", {"project": w.path})),
    ("submit recipe", CREATE, lambda w: ("post", "/api/runs", {"project": w.path, "spec": {"recipe": {"model": "mlp"}}})),
    ("submit code", CREATE, lambda w: (
        "multipart", "/api/runs/upload", {"project": w.path, "spec": "params: {lr: 0.1}", "code": _file("train.py", b"print(1)\n")})),
    ("get run", READ, lambda w: ("get", f"/api/runs/{w.submit().id}", None)),
    ("cancel run", EDIT_OK, lambda w: ("post", f"/api/runs/{w.submit().id}/cancel", None)),
    ("rerun", CREATE, lambda w: ("post", f"/api/runs/{w.submit().id}/rerun", None)),
    ("delete run", DELETE, lambda w: ("delete", f"/api/runs/{_finished_run(w).id}", None)),
    ("log metrics", EDIT_OK, lambda w: (
        "post", f"/api/runs/{w.submit().id}/metrics", {"points": [{"key": "loss", "step": 0, "value": 1.5}]})),
    ("list metrics", READ, lambda w: ("get", f"/api/runs/{_run_with_results(w).id}/metrics", None)),
    ("metric history", READ, lambda w: ("get", f"/api/runs/{_run_with_results(w).id}/metrics/history", {"key": "loss"})),
    ("logs", READ, lambda w: ("get", f"/api/runs/{_run_with_results(w).id}/logs", None)),
    ("list artifacts", READ, lambda w: ("get", f"/api/runs/{_run_with_results(w).id}/artifacts", None)),
    ("upload artifact", CREATE, lambda w: (
        "multipart", f"/api/runs/{w.submit().id}/artifacts", {"file": _file("model.bin", b"\x00\x01")})),
    ("download artifact", READ, lambda w: ("get", _download_path(w), None)),
    ("list teams", READ | {"outsider": 200}, lambda w: ("get", "/api/teams", None)),
    ("team members", READ, lambda w: ("get", f"/api/teams/{w.team.slug}/members", None)),
    ("invite member", TEAM_ADMIN, lambda w: (
        "post", f"/api/teams/{w.team.slug}/invitations", {"username": w.users["outsider"].username, "role": "viewer"})),
    ("team invitations", TEAM_ADMIN_OK, lambda w: ("get", f"/api/teams/{w.team.slug}/invitations", None)),
    ("revoke invitation", TEAM_ADMIN_DELETE, lambda w: ("delete", f"/api/teams/{w.team.slug}/invitations/{_invited(w).pk}", None)),
    ("my invitations", READ | {"outsider": 200}, lambda w: ("get", "/api/invitations", None)),
    ("change role", TEAM_ADMIN_OK, lambda w: (
        "patch", f"/api/teams/{w.team.slug}/members/{w.users['viewer'].pk}", {"role": "editor"})),
    ("remove member", TEAM_ADMIN_DELETE, lambda w: ("delete", f"/api/teams/{w.team.slug}/members/{_member(w).pk}", None)),
    ("my tokens", READ | {"outsider": 200}, lambda w: ("get", "/api/auth/tokens", None)),
    ("me", READ | {"outsider": 200}, lambda w: ("get", "/api/auth/me", None)),
]


def _file(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def _member(world):
    return MembershipFactory(team=world.team).user


def _invited(world):
    return TeamInvitation.objects.create(team=world.team, invitee=UserFactory(), invited_by=world.users["admin"]).invitee


def _download_path(world) -> str:
    run = _run_with_results(world)
    return f"/api/runs/{run.id}/artifacts/{run.artifacts.get().id}/download"


def _state() -> tuple:
    return (
        Run.objects.count(), Metric.objects.count(), Artifact.objects.count(),
        sorted(Membership.objects.values_list("user_id", "role")), sorted(Project.objects.values_list("id", "visibility")),
        sorted(TeamInvitation.objects.values_list("team_id", "invitee_id")),
        sorted(Run.objects.values_list("id", "state")),
    )


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(("name", "expected", "build"), CASES, ids=[case[0] for case in CASES])
def test_endpoint_answers_each_actor_as_its_access_allows(world, actor, name, expected, build):
    method, path, payload = build(world)
    api = world.api(actor)
    before = _state()
    response = getattr(api, method)(path, payload) if method != "delete" else api.delete(path)
    if response.streaming:
        b"".join(response.streaming_content)  # reading to the end closes the file (test client semantics)
    assert response.status_code == expected[actor], (actor, response.content[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "fields"} and body["message"]
        assert _state() == before, "a refused request changed something"


def test_outsiders_never_see_private_data(world):
    run = world.submit()
    outsider = world.api("outsider")
    assert outsider.get("/api/runs").json()["items"] == []
    assert outsider.get("/api/projects").json()["items"] == []
    assert outsider.get(f"/api/runs/{run.id}").status_code == 404
    assert outsider.get(f"/api/runs/{run.id + 1000}").status_code == 404  # same answer as for a run that does not exist
    assert outsider.get(f"/api/runs/{run.id}").json() == outsider.get(f"/api/runs/{run.id + 1000}").json()
    assert outsider.get("/api/runs", {"project": world.path}).status_code == 404


def test_the_anonymous_answer_says_how_to_authenticate(world):
    response = world.api("anonymous").get("/api/projects")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthorized"
