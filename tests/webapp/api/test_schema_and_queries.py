"""The OpenAPI schema and docs (no CDN), JSON errors everywhere, and list endpoints in a fixed number of queries."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.api.schemas import RunPage
from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, metrics_log

from ..factories import MembershipFactory


def test_openapi_schema_describes_every_endpoint(api, db):
    schema = api.get("/api/openapi.json").json()
    assert schema["info"]["title"] == "Kiln API"
    for path in ("/api/runs", "/api/runs/upload", "/api/projects/{ref}", "/api/runs/{run_id}/metrics/history",
                 "/api/teams/{slug}/members/{user_id}", "/api/auth/token"):
        assert path in schema["paths"], path
    assert "state IN (running, queued)" in schema["info"]["description"]


def test_docs_page_and_its_assets_are_served_locally(api, db):
    page = api.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "the docs page must not load anything from a CDN"
    assets = re.findall(r"(?:src|href)=\"(/api/docs/assets/[^\"]+)\"", html)
    assert len(assets) == 4
    for asset in assets:
        response = api.get(asset)
        assert response.status_code == 200
        b"".join(response.streaming_content)
    assert api.get("/api/docs/assets/..%2Fsettings.py").status_code == 404


def test_unknown_api_paths_and_ids_answer_json(world):
    response = world.api("owner").get("/api/runs/99999999")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert world.api("owner").get("/api/runs/0").status_code == 422
    assert world.api("owner").get(f"/api/runs/{2**70}").status_code == 422


def _runs(world, count):
    specs = [{"recipe": {"model": "mlp"}, "params": {"i": i}, "tags": ["a", "b"]} for i in range(count)]
    for spec in specs:
        run = world.submit(spec)
        metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, 1.0, 0.0), MetricPoint("acc", 0, 0.5, 0.0)])


def _queries(api, path, params):
    with CaptureQueriesContext(connection) as context:
        response = api.get(path, params)
        assert response.status_code == 200
    return len(context.captured_queries), response.json()


@pytest.mark.parametrize(
    ("actor", "params"),
    [
        ("owner", {"project": "PATH"}),
        ("viewer", {"project": "PATH", "query": "params.i >= 0 AND tags = a OR metrics.loss < 2", "sort": "-metrics.loss,params.i"}),
        ("editor", {}),
    ],
)
def test_run_list_queries_do_not_grow_with_the_number_of_runs(world, actor, params):
    params = {k: world.path if v == "PATH" else v for k, v in params.items()} | {"limit": 100}
    api = world.api(actor)
    api.get("/api/auth/me")  # the token's first use of the minute also records last_used_at
    _runs(world, 5)
    few, body = _queries(api, "/api/runs", params)
    assert body["count"] == 5
    _runs(world, 45)
    many, body = _queries(api, "/api/runs", params)
    assert body["count"] == 50 and len(body["items"]) == 50
    assert many == few <= 8


def test_project_list_queries_do_not_grow_with_the_number_of_projects(world):
    api = world.api("viewer")
    api.get("/api/auth/me")
    few, _ = _queries(api, "/api/projects", {})
    for i in range(20):
        MembershipFactory(user=world.users["viewer"]).team.projects.create(slug=f"p{i}", name=f"P{i}")
    many, body = _queries(api, "/api/projects", {})
    assert body["count"] == 21 and many == few


def test_a_token_request_costs_one_query_to_authenticate(world):
    """Token lookup is a single indexed query (last_used_at is written at most once a minute)."""
    api = world.api("outsider")
    api.get("/api/auth/me")
    count, _ = _queries(api, "/api/auth/me", {})
    assert count == 1
    assert Run.objects.count() == 0


def test_the_fast_run_list_matches_its_declared_schema_and_the_detail_view(world):
    """The list skips ninja's output validation for speed; this holds it to the schema it declares."""
    _runs(world, 3)
    api = world.api("owner")
    page = api.get("/api/runs", {"project": world.path}).json()
    RunPage.model_validate(page)
    for item in page["items"]:
        detail = api.get(f"/api/runs/{item['id']}").json()
        assert {key: detail[key] for key in item} == item
