"""NaN and ±inf metric values: accepted, stored, summarised over finite values, and shown as such on every path."""

from __future__ import annotations

import json
import math

import pytest
from django.test import Client

from webapp.dashboards.export import csv_lines
from webapp.experiments.live import metric_series
from webapp.experiments.models import Metric, MetricSummary
from webapp.experiments.nonfinite import json_value, text_value
from webapp.experiments.results import MetricPoint, metrics_log
from worker.events import EventIngestor, EventReader

# loss: 2.0, NaN, +inf, 0.5, -inf -> last -inf, finite min 0.5, finite max 2.0
VALUES = [2.0, math.nan, math.inf, 0.5, -math.inf]
SHOWN = [2.0, "NaN", "Infinity", 0.5, "-Infinity"]


@pytest.fixture
def run(world):
    return world.submit()


def _stored(run, key="loss"):
    return list(Metric.objects.filter(run=run, key=key).order_by("step").values_list("value", flat=True))


def test_the_rule_in_one_place():
    assert [json_value(v) for v in [*VALUES, None]] == [*SHOWN, "NaN"]  # None: a stored NaN
    assert [text_value(v) for v in VALUES] == ["2.0", "NaN", "Infinity", "0.5", "-Infinity"]
    assert [float(text_value(v)) for v in VALUES[2:]] == VALUES[2:]  # the words read back as floats


@pytest.mark.parametrize("body", [
    '{"points": [{"key": "loss", "step": 0, "value": 2.0}, {"key": "loss", "step": 1, "value": NaN}, '
    '{"key": "loss", "step": 2, "value": Infinity}, {"key": "loss", "step": 3, "value": 0.5}, '
    '{"key": "loss", "step": 4, "value": -1e999}]}',
    json.dumps({"points": [{"key": "loss", "step": i, "value": v} for i, v in enumerate(SHOWN)]}),
], ids=["json-literals", "strings"])
def test_the_api_accepts_nan_and_infinities_and_gives_them_back_as_strings(world, run, body):
    client, token = Client(), world.tokens["editor"]
    response = client.post(f"/api/runs/{run.id}/metrics", body, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["stored"] == 5, response.content
    stored = _stored(run)
    assert stored[1] is None and stored[2:] == [math.inf, 0.5, -math.inf]  # NaN is stored as NULL
    api = world.api("viewer")
    history = api.get(f"/api/runs/{run.id}/metrics/history", {"key": "loss"}).json()
    assert history["values"] == SHOWN
    ranged = api.get(f"/api/runs/{run.id}/metrics/history", {"key": "loss", "step_min": 0}).json()
    assert ranged["values"] == SHOWN
    assert api.get(f"/api/runs/{run.id}/metrics").json() == [
        {"key": "loss", "last": "-Infinity", "last_step": 4, "min": 0.5, "max": 2.0, "count": 5}
    ]


def test_summaries_are_over_finite_values_whatever_the_batches(run):
    for step, value in enumerate(VALUES):  # one point per batch: the incremental path
        metrics_log(run_id=run.id, points=[MetricPoint("loss", step, value, 1.0)])
    metrics_log(run_id=run.id, points=[MetricPoint("overflow", s, v, 1.0) for s, v in enumerate([math.inf, math.nan])])
    loss = MetricSummary.objects.get(run=run, key="loss")
    assert (loss.last, loss.min, loss.max, loss.count) == (-math.inf, 0.5, 2.0, 5)
    overflow = MetricSummary.objects.get(run=run, key="overflow")
    assert (overflow.last, overflow.min, overflow.max) == (None, None, None)  # last NaN; no finite value


@pytest.mark.parametrize("how", ["project", "query"])  # the fixed-query page and the filtered one
def test_the_run_list_carries_the_last_value_by_the_same_rule(world, run, how):
    metrics_log(run_id=run.id, points=[MetricPoint("loss", s, v, 1.0) for s, v in enumerate(VALUES)])
    metrics_log(run_id=run.id, points=[MetricPoint(k, 0, v, 1.0) for k, v in (("nan", math.nan), ("inf", math.inf))])
    params = {"project": world.path} if how == "project" else {"project": world.path, "query": "state = queued"}
    items = world.api("viewer").get("/api/runs", params).json()["items"]
    metrics = items[0]["metrics"]
    assert metrics["loss"] == {"last": "-Infinity", "last_step": 4, "min": 0.5, "max": 2.0, "count": 5}
    assert (metrics["nan"]["last"], metrics["inf"]["last"], metrics["inf"]["max"]) == ("NaN", "Infinity", None)
    detail = world.api("viewer").get(f"/api/runs/{run.id}").json()
    assert detail["metrics"]["loss"]["last"] == "-Infinity" and detail["metrics"]["nan"]["last"] == "NaN"


def test_the_jobs_events_accept_nan_and_infinities(run, tmp_path):
    events = tmp_path / "events.jsonl"
    lines = [{"type": "metrics", "step": s, "time": 1.0, "values": {"loss": v}} for s, v in enumerate(VALUES)]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))  # json writes NaN, Infinity, -Infinity
    notes: list[str] = []
    EventIngestor(run.id, tmp_path, notes.append).ingest(EventReader(events).read()[0])
    assert not notes
    stored = _stored(run)
    assert stored[1] is None and stored[2:] == [math.inf, 0.5, -math.inf]


def test_csv_export_and_chart_payloads_follow_the_rule(run):
    metrics_log(run_id=run.id, points=[MetricPoint("loss", s, v, 1.0) for s, v in enumerate(VALUES)])
    rows = "".join(csv_lines([run], ["loss"])).splitlines()[1:]
    assert [row.split(",")[5] for row in rows] == ["2.0", "NaN", "Infinity", "0.5", "-Infinity"]
    drawn = metric_series(run)["loss"]  # charts draw a gap where the value is not finite
    assert drawn["values"] == [2.0, None, None, 0.5, None]
    assert metric_series(run, {"loss": 0})["loss"]["values"] == [None, None, 0.5, None]


def test_the_run_table_shows_nan_and_infinities(world, run, client):
    metrics_log(run_id=run.id, points=[MetricPoint(k, 0, v, 1.0) for k, v in (("a", math.nan), ("b", math.inf))])
    client.force_login(world.users["owner"])
    page = client.get(f"/p/{world.project.id}/").content.decode()
    assert ">NaN</td>" in page and ">inf</td>" in page
