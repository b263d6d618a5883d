"""The run query language over HTTP: AND/OR/NOT/IN, comparisons on params, metrics, state, tags, owner, name."""

from __future__ import annotations

import pytest

from webapp.experiments.lifecycle import run_cancel
from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, metrics_log


@pytest.fixture
def runs(world):
    """Five runs with different params, tags, metrics and states; returned by name."""
    specs = {
        "a": {"name": "a", "params": {"lr": 0.1, "arch": "resnet", "wide": True}, "tags": ["baseline"]},
        "b": {"name": "b", "params": {"lr": 0.001, "arch": "vit", "wide": False}},
        "c": {"name": "c", "params": {"lr": 0.005, "arch": "resnet"}, "tags": ["baseline", "long"]},
        "d": {"name": "d", "params": {"lr": "auto"}},
        "e": {"name": "e-final", "params": {}},
    }
    made = {}
    for key, spec in specs.items():
        made[key] = world.submit({"recipe": {"model": "mlp"}, **spec}, user=world.users["editor"] if key == "e" else None)
    losses = {"a": [3.0, 0.9], "b": [2.0, 0.2, 0.5], "c": [5.0, 0.05]}
    for key, values in losses.items():
        metrics_log(run_id=made[key].id, points=[MetricPoint("loss", i, v, 1.0) for i, v in enumerate(values)])
    run_cancel(user=world.users["owner"], run=made["d"])
    Run.objects.filter(id=made["b"].id).update(state="running")
    return made


def _names(world, query, sort=""):
    response = world.api("owner").get("/api/runs", {"project": world.path, "query": query, "sort": sort})
    assert response.status_code == 200, response.content
    return [item["name"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"a", "b", "c", "d", "e-final"}),
        ("state = running", {"b"}),
        ("state IN (running, cancelled)", {"b", "d"}),
        ("state not in (queued)", {"b", "d"}),
        ("params.lr < 0.01", {"b", "c"}),
        ("params.lr >= 0.005", {"a", "c"}),
        ("params.lr = 0.1", {"a"}),
        ("params.lr = auto", {"d"}),
        ("params.lr != 0.1", {"b", "c", "d", "e-final"}),  # != also matches runs without the param
        ("params.arch = resnet", {"a", "c"}),
        ("params.arch IN (vit, 'resnet')", {"a", "b", "c"}),
        ("params.wide = true", {"a"}),
        ("params.wide = false", {"b"}),
        ("tags = baseline", {"a", "c"}),
        ("tags != baseline", {"b", "d", "e-final"}),
        ("tags IN (long, nothing)", {"c"}),
        ("metrics.loss < 0.6", {"b", "c"}),  # the last value
        ("metrics.loss.min < 0.3", {"b", "c"}),
        ("metrics.loss.max >= 3", {"a", "c"}),
        ("metrics.loss.count = 3", {"b"}),
        ("name = e-final", {"e-final"}),
        ("name ~ FIN", {"e-final"}),
        ("owner = olive", {"a", "b", "c", "d"}),
        ("state IN (running, queued) AND params.lr < 0.01 OR tags = baseline", {"a", "b", "c"}),
        ("state IN (running, queued) AND (params.lr < 0.01 OR tags = baseline)", {"a", "b", "c"}),
        ("state = queued AND (params.lr < 0.01 OR tags = long)", {"c"}),
        ("NOT tags = baseline AND params.lr < 1", {"b"}),
        ("metrics.loss < 1 and params.arch = resnet or name = b", {"a", "b", "c"}),
        ("number >= 4", {"d", "e-final"}),
        ("created_at > 2000-01-01", {"a", "b", "c", "d", "e-final"}),
        ('name = "a"', {"a"}),
    ],
)
def test_query_selects_the_matching_runs(world, runs, query, expected):
    assert set(_names(world, query)) == expected


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("metrics.loss", ["c", "b", "a", "e-final", "d"]),  # runs without the metric last, newest first
        ("-metrics.loss", ["a", "b", "c", "e-final", "d"]),
        ("params.lr", ["b", "c", "a", "d", "e-final"]),  # numbers, then text; missing last
        ("name", ["a", "b", "c", "d", "e-final"]),
        ("-number", ["e-final", "d", "c", "b", "a"]),
        ("state,name", ["d", "a", "c", "e-final", "b"]),
    ],
)
def test_sort_by_any_field_including_metrics(world, runs, sort, expected):
    assert _names(world, "", sort) == expected


@pytest.mark.parametrize(
    ("query", "position", "words"),
    [
        ("state IN (running", 17, "expected ')'"),
        ("params.lr <", 11, "expected a value"),
        ("bogus = 1", 0, "unknown field"),
        ("state = sleeping", 8, "not a state"),
        ("name = 'open", 7, "unterminated"),
        ("state = queued )", 15, "expected AND, OR"),
        ("state = queued AND", 18, "expected a field"),
        ("params.lr ? 1", 10, "unexpected character"),
        ("metrics.loss < low", 15, "compares with numbers"),
        ("number = ten", 9, "compares with numbers"),
        ("(" * 40 + "state = queued" + ")" * 40, 32, "nests too deeply"),
        ("created_at > yesterday", 13, "dates"),
    ],
)
def test_a_bad_query_gets_400_naming_the_position(world, runs, query, position, words):
    response = world.api("owner").get("/api/runs", {"project": world.path, "query": query})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bad_query" and body["fields"][0]["field"] == "query"
    assert f"at position {position}" in body["message"] and words in body["message"], body["message"]


def test_a_bad_sort_names_the_sort(world, runs):
    response = world.api("owner").get("/api/runs", {"project": world.path, "sort": "name,colour"})
    assert response.status_code == 400
    assert response.json()["fields"][0]["field"] == "sort"
    assert "colour" in response.json()["message"]


def test_runs_without_a_project_are_every_run_you_can_see(world, runs):
    other = world.api("outsider")
    assert other.get("/api/runs", {"query": "tags = baseline"}).json()["count"] == 0
    assert world.api("viewer").get("/api/runs", {"query": "tags = baseline"}).json()["count"] == 2


def test_pages_hold_at_most_limit_runs_and_point_to_the_next(world, runs):
    api = world.api("owner")
    first = api.get("/api/runs", {"project": world.path, "limit": 2}).json()
    assert (first["count"], len(first["items"]), first["next_offset"]) == (5, 2, 2)
    last = api.get("/api/runs", {"project": world.path, "limit": 2, "offset": 4}).json()
    assert len(last["items"]) == 1 and last["next_offset"] is None
    assert api.get("/api/runs", {"project": world.path, "limit": 500}).status_code == 422
