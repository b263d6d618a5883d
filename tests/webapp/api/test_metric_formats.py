"""POST /api/runs/{id}/metrics: rows, columns and gzip bodies store exactly the same points; bad bodies change nothing."""

from __future__ import annotations

import gzip
import json
import math

import pytest
from django.test import override_settings

from webapp.experiments.models import Metric, MetricRollup, MetricSummary

STEPS = [0, 1, 2, 5, 3, 3, 7]  # out of order, step 3 twice (the last write wins)
VALUES = [2.0, math.nan, math.inf, 0.5, 9.0, -1.0, -math.inf]
WALLS = [1000.0 + i for i in range(len(STEPS))]


def _rows(key: str) -> list[dict]:
    return [{"key": key, "step": s, "value": v, "wall_time": w} for s, v, w in zip(STEPS, VALUES, WALLS, strict=True)]


def _series(key: str) -> dict:
    return {"key": key, "steps": STEPS, "values": VALUES, "wall_times": WALLS}


def _post(world, run, body, *, encoding: str | None = None, raw: bytes | None = None):
    api = world.api("editor")
    data = raw if raw is not None else json.dumps(body).encode()  # NaN/Infinity as JSON literals
    headers = api._headers(None)
    if encoding:
        headers["Content-Encoding"] = encoding
    return api.client.post(f"/api/runs/{run.id}/metrics", data, content_type="application/json", headers=headers)


def _stored(run) -> tuple:
    points = list(Metric.objects.filter(run=run).order_by("key", "step").values_list("key", "step", "value", "wall_time"))
    summaries = list(MetricSummary.objects.filter(run=run).order_by("key").values_list("key", "last", "last_step", "min", "max", "count"))
    rollups = [(k, c, n, bytes(b)) for k, c, n, b in
               MetricRollup.objects.filter(run=run).order_by("key", "chunk").values_list("key", "chunk", "count", "buckets")]
    return points, summaries, rollups


@pytest.fixture
def stored_as_rows(world):
    run = world.submit()
    response = _post(world, run, {"points": _rows("loss") + _rows("acc")})
    assert response.json() == {"received": 14, "stored": 12}, response.content
    return _stored(run)


@pytest.mark.parametrize("body", [
    {"series": [_series("loss"), _series("acc")]},
    {"series": [_series("acc"), {**_series("loss"), "steps": STEPS[:3], "values": VALUES[:3], "wall_times": WALLS[:3]},
                {**_series("loss"), "steps": STEPS[3:], "values": VALUES[3:], "wall_times": WALLS[3:]}]},
    {"points": _rows("loss")[:4] + _rows("acc") + _rows("loss")[4:]},  # keys interleaved
], ids=["columns", "a-key-split-in-two", "rows-interleaved"])
def test_columns_and_rows_store_the_same_points_summaries_and_rollups(world, stored_as_rows, body):
    run = world.submit()
    assert _post(world, run, body).json() == {"received": 14, "stored": 12}
    assert _stored(run) == stored_as_rows


def test_a_gzip_body_stores_what_the_plain_one_does(world, stored_as_rows):
    run = world.submit()
    raw = gzip.compress(json.dumps({"series": [_series("loss"), _series("acc")]}).encode())
    assert _post(world, run, None, encoding="gzip", raw=raw).json() == {"received": 14, "stored": 12}
    assert _stored(run) == stored_as_rows


def test_one_series_and_the_nonfinite_words_are_accepted(world):
    run = world.submit()
    body = {"key": "loss", "steps": [0, 1, 2], "values": [1.5, "NaN", "-Infinity"]}  # wall_times: now
    assert _post(world, run, body).json() == {"received": 3, "stored": 3}
    points = list(Metric.objects.filter(run=run).order_by("step").values_list("value", flat=True))
    assert points == [1.5, None, -math.inf]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100_000)
def test_a_gzip_body_that_inflates_past_the_limit_gets_413_and_stores_nothing(world):
    run = world.submit()
    bomb = gzip.compress(b'{"key": "loss", "steps": [' + b" " * 5_000_000 + b"0], \"values\": [1]}")
    assert len(bomb) < 100_000
    response = _post(world, run, None, encoding="gzip", raw=bomb)
    assert response.status_code == 413 and response.json()["code"] == "too_large", response.content
    assert "100,000" in response.json()["message"]
    assert not Metric.objects.filter(run=run).exists()


@pytest.mark.parametrize(("encoding", "raw"), [("br", b"{}"), ("gzip", b"not gzip"), ("gzip", gzip.compress(b'{"points": []}')[:-4])],
                         ids=["brotli", "not-gzip", "truncated"])
def test_an_encoding_that_is_not_gzip_or_broken_gzip_gets_415(world, encoding, raw):
    response = _post(world, world.submit(), None, encoding=encoding, raw=raw)
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type", response.content


@pytest.mark.parametrize(("body", "field"), [
    ({"key": "loss", "steps": [0, 1], "values": [1.0]}, "values"),
    ({"key": "loss", "steps": [0], "values": [1.0], "wall_times": [1.0, 2.0]}, "wall_times"),
    ({"key": "loss", "steps": [0, 2**63], "values": [1.0, 2.0]}, "steps.1"),
    ({"key": "", "steps": [0], "values": [1.0]}, "key"),
    ({"key": "loss", "steps": [0], "values": ["high"]}, "values.0"),
    ({"key": "loss", "steps": [0], "values": [1.0], "epoch": 3}, "epoch"),
    ({"series": [{"key": "a", "steps": [0], "values": [1.0]}, {"key": "b", "steps": [0], "value": [1.0]}]}, "series.1.value"),
    ({"series": [{"key": "a", "steps": list(range(6000)), "values": [0.0] * 6000}] * 2}, "series"),
])
def test_a_malformed_series_gets_422_naming_the_field_and_stores_nothing(world, body, field):
    run = world.submit()
    response = _post(world, run, body)
    assert response.status_code == 422, response.content
    assert field in [f["field"] for f in response.json()["fields"]], response.json()
    assert not Metric.objects.filter(run=run).exists()


def test_a_body_that_is_not_json_gets_400(world):
    response = _post(world, world.submit(), None, raw=b'{"points": [')
    assert response.status_code == 400 and response.json()["code"] == "bad_request", response.content


def test_the_openapi_schema_documents_the_three_shapes(api):
    operation = api.get("/api/openapi.json").json()["paths"]["/api/runs/{run_id}/metrics"]["post"]
    shapes = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [sorted(shape["required"]) for shape in shapes] == [["points"], ["key", "steps", "values"], ["series"]]
    assert "$ref" not in json.dumps(shapes)


def test_an_empty_body_gets_422_naming_points(world):
    response = _post(world, world.submit(), None, raw=b"")
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "points", response.content


def test_every_json_operation_takes_a_gzip_body(world):
    api = world.api("owner")
    headers = {**api._headers(None), "Content-Encoding": "gzip"}
    body = gzip.compress(json.dumps({"name": "Compressed"}).encode())
    response = api.client.post("/api/projects", body, content_type="application/json", headers=headers)
    assert response.status_code == 201 and response.json()["name"] == "Compressed", response.content
