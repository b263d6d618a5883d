"""Inputs found from outside that got a 5xx, an HTML error or silent acceptance: each now gets a JSON 4xx and changes nothing."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client

from webapp.api import projects as projects_api
from webapp.experiments.models import Artifact, Run
from webapp.projects.models import Project

RECIPE = {"recipe": {"model": "mlp"}}
NOT_IDS = ["²", "٣", "1_0", "\uff11\uff12", str(2**63), str(2**70), "-1", "0", " 1\n2"]  # Unicode digits, too big, not positive


def _json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["code"] and body["message"], body
    return body


def _no_exceptions(api):
    api.client = Client(raise_request_exception=False)  # see the 500 a user would, not the test's traceback
    return api


@pytest.mark.parametrize("ref", NOT_IDS)
def test_a_project_ref_that_is_not_an_ascii_id_is_a_404_on_every_operation(world, ref):
    api = _no_exceptions(world.api("owner"))
    before = Run.objects.count()
    answers = [
        api.get(f"/api/projects/{ref}"),
        api.patch(f"/api/projects/{ref}", {"visibility": "private"}),
        api.get("/api/runs", {"project": ref}),
        api.post("/api/runs", {"project": ref, "spec": RECIPE}),
        api.multipart("/api/runs/upload", {"project": ref, "spec": json.dumps(RECIPE)}),
    ]
    for response in answers:
        assert response.status_code in (404, 422), (response.status_code, response.content)
        _json_error(response, response.status_code)
    assert Run.objects.count() == before


def test_a_huge_integer_project_is_a_404_not_an_overflow(world):
    response = _no_exceptions(world.api("owner")).post("/api/runs", {"project": 2**70, "spec": RECIPE})
    _json_error(response, 404)


@pytest.mark.parametrize("run_id", [*NOT_IDS[:-1], "12.0", "+5", "1x"])
def test_a_run_id_that_is_not_an_ascii_id_gets_422_naming_it(world, run_id):
    api = _no_exceptions(world.api("owner"))
    for response in (api.get(f"/api/runs/{run_id}"), api.post(f"/api/runs/{run_id}/cancel")):
        assert _json_error(response, 422)["fields"][0]["field"] == "run_id"


@pytest.mark.parametrize("spec", [
    "[" * 5000 + "]" * 5000,
    "a:\n" + "".join(" " * (2 * i) + "- \n" for i in range(1, 200)),
    "&a [*a]",
    "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
], ids=["deep-flow", "deep-block", "cycle", "alias-bomb"])
def test_a_deep_or_exploding_yaml_spec_upload_gets_422_naming_spec(world, spec):
    response = _no_exceptions(world.api("owner")).multipart("/api/runs/upload", {"project": world.path, "spec": spec})
    body = _json_error(response, 422)
    assert body["fields"][0]["field"] == "spec", body
    assert Run.objects.count() == 0


def test_a_deeply_nested_json_spec_gets_422_naming_spec(world):
    deep: dict = {}
    for _ in range(200):
        deep = {"a": deep}
    body = _json_error(world.api("owner").post("/api/runs", {"project": world.path, "spec": {**RECIPE, "params": deep}}), 422)
    assert body["fields"] == [{"field": "spec", "message": "is nested more than 32 levels deep"}]


def test_a_json_body_nested_past_the_parser_gets_400_json(world):
    api = _no_exceptions(world.api("owner"))
    response = api.client.post("/api/runs", "[" * 100_000 + "]" * 100_000, content_type="application/json",
                               headers=api._headers(None))
    _json_error(response, 400)


@pytest.mark.parametrize(("method", "path", "body", "unknown"), [
    ("post", "/api/runs", {"project": "olive/mnist", "spec": RECIPE, "gpu": 1}, "gpu"),
    ("post", "/api/projects", {"name": "p", "visiblity": "team"}, "visiblity"),
    ("patch", "/api/projects/olive/mnist", {"visibility": "private", "owner": "mallory"}, "owner"),
    ("post", "/api/auth/token", {"username": "olive", "password": "x", "expires": "never"}, "expires"),
    ("post", "/api/runs/{run}/metrics", {"points": [], "run": 3}, "run"),
    ("post", "/api/runs/{run}/metrics", {"points": [{"key": "loss", "step": 0, "value": 1.0, "epoch": 1}]}, "points.0.epoch"),
])
def test_unknown_fields_in_a_json_body_get_422_naming_them(world, method, path, body, unknown):
    run = world.submit()
    response = getattr(world.api("owner"), method)(path.format(run=run.id), body)
    error = _json_error(response, 422)
    assert {"field": unknown, "message": "unknown field"} in error["fields"] and unknown in error["message"]
    assert (Run.objects.count(), Project.objects.count(), Project.objects.get().visibility) == (1, 1, "team")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""])
def test_a_json_body_sent_as_another_type_gets_415(world, content_type):
    api = world.api("owner")
    response = api.client.generic("POST", "/api/runs", json.dumps({"project": world.path, "spec": RECIPE}),
                                  content_type=content_type, headers=api._headers(None))
    assert _json_error(response, 415)["code"] == "unsupported_media_type"
    assert Run.objects.count() == 0


def test_json_with_a_charset_or_a_json_suffix_type_is_accepted(world):
    api = world.api("owner")
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = api.client.post("/api/runs", json.dumps({"project": world.path, "spec": RECIPE}),
                                   content_type=content_type, headers=api._headers(None))
        assert response.status_code == 201, response.content


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/projects", {"name": "a\x00b"}),
    ("post", "/api/runs", {"project": "olive/mnist", "spec": {**RECIPE, "notes": "a\x00b"}}),
    ("post", "/api/runs", {"project": "olive/mnist", "spec": {**RECIPE, "params": {"note": "a\x00b"}}}),
    ("get", "/api/runs", {"project": "olive/mnist", "query": "name = a\x00b"}),
])
def test_nul_characters_are_refused_and_nothing_is_stored(world, method, path, body):
    response = getattr(world.api("owner"), method)(path, body)
    assert response.status_code in (400, 422)
    assert "NUL" in _json_error(response, response.status_code)["message"]
    assert (Run.objects.count(), Project.objects.count()) == (0, 1)


@pytest.mark.parametrize("name", ["a\\b.txt", "..\\..\\etc\\passwd", "dir/", "a//b", "a/./b", "line\nbreak"])
def test_an_artifact_name_that_is_not_a_plain_relative_path_gets_422_json(world, name):
    run = world.submit()
    data = io.BytesIO(b"x")
    data.name = "x.txt"
    response = _no_exceptions(world.api("owner")).multipart(f"/api/runs/{run.id}/artifacts", {"name": name, "file": data})
    assert "relative path" in _json_error(response, 422)["message"]
    assert not Artifact.objects.exists()


@pytest.mark.parametrize("path", ["/api/projects/a%0Ab", "/api/no/such/endpoint", "/api/runs/1/nothing"])
def test_a_path_no_operation_matches_is_a_json_404(world, path):
    _json_error(world.api("owner").get(path), 404)


def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(world):
    body = _json_error(world.api("owner").client.put("/api/runs"), 405)
    assert "GET" in body["message"] and "POST" in body["message"]


def test_djangos_own_400_under_the_api_is_json(world):
    _json_error(Client().get("/api/runs", headers={"Host": "evil.example"}), 400)  # DisallowedHost, raised in middleware


def test_an_unexpected_exception_under_the_api_is_a_json_500_without_details(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(projects_api, "projects_visible_to", broken)
    response = _no_exceptions(world.api("owner")).get("/api/projects")
    body = _json_error(response, 500)
    assert "secret" not in response.content.decode() and body["code"] == "server_error"


def test_rerunning_a_sweep_point_queues_a_run_with_that_points_params(world):
    spec = {**RECIPE, "sweep": {"parameters": {"optimizer.lr": {"values": [0.1, 0.01]}}}}
    submitted = world.api("owner").post("/api/runs", {"project": world.path, "spec": spec}).json()
    point = submitted["runs"][1]
    response = world.api("editor").post(f"/api/runs/{point['id']}/rerun")
    assert response.status_code == 201, response.content
    again = response.json()
    assert again["params"]["optimizer.lr"] == 0.01 and again["params"] == point["params"]
    assert again["cloned_from_id"] == point["id"] and again["sweep_id"] is None
    assert "sweep_point" not in again["spec"] and again["spec"]["recipe"] == point["spec"]["recipe"]
