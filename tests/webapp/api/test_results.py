"""Metrics (batch log, summaries, downsampled history), logs from an offset, artifacts up and down."""

from __future__ import annotations

import hashlib
import io

import pytest

from webapp.api import results as results_api
from webapp.experiments.models import Artifact, Metric, MetricSummary
from webapp.experiments.results import MetricPoint, logs_append, metrics_log


def _file(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def run(world):
    return world.submit()


def test_a_metric_batch_is_stored_once_and_summarised(world, run):
    api = world.api("editor")
    batch = {"points": [{"key": "loss", "step": i, "value": 1.0 / (i + 1), "wall_time": 1000.0 + i} for i in range(100)]}
    assert api.post(f"/api/runs/{run.id}/metrics", batch).json() == {"received": 100, "stored": 100}
    assert api.post(f"/api/runs/{run.id}/metrics", batch).json() == {"received": 100, "stored": 0}
    keys = api.get(f"/api/runs/{run.id}/metrics").json()
    assert keys == [{"key": "loss", "last": 0.01, "last_step": 99, "min": 0.01, "max": 1.0, "count": 100}]


def test_a_batch_over_10000_points_gets_422_and_stores_nothing(world, run):
    batch = {"points": [{"key": "x", "step": i, "value": 0.0} for i in range(10_001)]}
    response = world.api("owner").post(f"/api/runs/{run.id}/metrics", batch)
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "points"
    assert Metric.objects.count() == 0 and MetricSummary.objects.count() == 0


@pytest.mark.parametrize(
    "point",
    [{"key": "", "step": 0, "value": 1}, {"key": "k", "step": 2**63, "value": 1}, {"key": "k", "step": 0, "value": "high"},
     {"key": "k" * 201, "step": 0, "value": 1}, {"step": 0, "value": 1}],
)
def test_a_malformed_point_rejects_the_whole_batch(world, run, point):
    batch = {"points": [{"key": "ok", "step": 0, "value": 1.0}, point]}
    response = world.api("owner").post(f"/api/runs/{run.id}/metrics", batch)
    assert response.status_code == 422 and response.json()["fields"]
    assert Metric.objects.count() == 0


def test_history_downsamples_but_keeps_a_spike(world, run):
    values = [1.0] * 5000
    values[2345] = 99.0
    metrics_log(run_id=run.id, points=[MetricPoint("loss", i, v, 0.0) for i, v in enumerate(values)])
    api = world.api("viewer")
    body = api.get(f"/api/runs/{run.id}/metrics/history", {"key": "loss", "max_points": 100}).json()
    assert body["total"] == 5000 and body["downsampled"] is True and len(body["steps"]) <= 100
    assert 99.0 in body["values"] and body["steps"] == sorted(body["steps"])
    again = api.get(f"/api/runs/{run.id}/metrics/history", {"key": "loss", "max_points": 100}).json()
    assert again == body  # deterministic


def test_history_of_a_step_range_is_full_resolution(world, run):
    metrics_log(run_id=run.id, points=[MetricPoint("loss", i, float(i), 0.0) for i in range(5000)])
    body = world.api("viewer").get(
        f"/api/runs/{run.id}/metrics/history", {"key": "loss", "max_points": 10, "step_min": 100, "step_max": 299}
    ).json()
    assert body["steps"] == list(range(100, 300)) and body["downsampled"] is False


def test_history_of_an_unknown_key_is_empty(world, run):
    body = world.api("viewer").get(f"/api/runs/{run.id}/metrics/history", {"key": "nope"}).json()
    assert body["steps"] == [] and body["total"] == 0


def test_nan_values_travel_as_the_string_nan(world, run):  # the proto3 JSON rule: webapp.experiments.nonfinite
    metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, 1.0, 0.0), MetricPoint("loss", 1, float("nan"), 0.0)])
    body = world.api("viewer").get(f"/api/runs/{run.id}/metrics/history", {"key": "loss"}).json()
    assert body["values"] == [1.0, "NaN"]


def test_logs_tail_from_an_offset(world, run):
    logs_append(run_id=run.id, lines=[(i, "stdout", f"line {i}") for i in range(5)])
    api = world.api("viewer")
    first = api.get(f"/api/runs/{run.id}/logs", {"limit": 3}).json()
    assert [line["text"] for line in first["lines"]] == ["line 0", "line 1", "line 2"] and first["next_offset"] == 3
    rest = api.get(f"/api/runs/{run.id}/logs", {"offset": first["next_offset"]}).json()
    assert [line["seq"] for line in rest["lines"]] == [3, 4] and rest["finished"] is False
    empty = api.get(f"/api/runs/{run.id}/logs", {"offset": 5}).json()
    assert empty["lines"] == [] and empty["next_offset"] == 5


def test_artifacts_upload_list_and_download(world, run):
    api = world.api("editor")
    data = bytes(range(256)) * 40
    created = api.multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("weights.bin", data), "kind": "checkpoint", "step": "7"})
    assert created.status_code == 201, created.content
    artifact = created.json()
    assert (artifact["name"], artifact["kind"], artifact["step"], artifact["size"]) == ("weights.bin", "checkpoint", 7, len(data))
    assert api.get(f"/api/runs/{run.id}/artifacts").json() == [artifact]
    download = world.api("viewer").get(f"/api/runs/{run.id}/artifacts/{artifact['id']}/download")
    body = b"".join(download.streaming_content)
    assert body == data and hashlib.sha256(body).hexdigest() == artifact["sha256"] == download["X-Checksum-Sha256"]
    assert 'filename="weights.bin"' in download["Content-Disposition"]


def test_a_runs_models_are_listed_with_their_signature_and_one_file_per_format(world, run):
    from django.core.files.base import ContentFile

    from webapp.experiments.results import artifact_store

    signature = {"inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 16]}],
                 "outputs": [{"name": "output", "dtype": "float32", "shape": ["batch", 3]}]}
    for fmt, name in (("engine", "model.pt"), ("onnx", "model.onnx")):
        artifact_store(run_id=run.id, name=name, kind="model", file=ContentFile(fmt.encode(), name=name),
                       metadata={"model": "model", "format": fmt, "signature": signature})
    artifact_store(run_id=run.id, name="notes.txt", kind="artifact", file=ContentFile(b"n", name="notes.txt"))
    api = world.api("viewer")
    [model] = api.get(f"/api/runs/{run.id}/models").json()
    assert model["name"] == "model" and model["signature"] == signature
    files = {f["format"]: f for f in model["files"]}
    assert set(files) == {"engine", "onnx"} and files["onnx"]["name"] == "model.onnx"
    assert b"".join(api.get(files["onnx"]["download_url"]).streaming_content) == b"onnx"
    listed = {a["name"]: a for a in api.get(f"/api/runs/{run.id}/artifacts").json()}
    assert listed["model.pt"]["kind"] == "model" and listed["model.pt"]["metadata"]["format"] == "engine"
    assert listed["notes.txt"]["metadata"] == {}


def test_an_artifact_of_another_run_is_not_found(world, run):
    other = world.submit()
    created = world.api("owner").multipart(f"/api/runs/{other.id}/artifacts", {"file": _file("a.txt", b"a")}).json()
    assert world.api("owner").get(f"/api/runs/{run.id}/artifacts/{created['id']}/download").status_code == 404


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs", ".hidden"])
def test_an_escaping_artifact_name_gets_422_and_stores_nothing(world, run, tmp_path, name):
    response = world.api("owner").multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("x", b"x"), "name": name})
    assert response.status_code == 422
    assert Artifact.objects.count() == 0 and not (tmp_path / "storage" / "runs").exists()


def test_an_oversized_artifact_gets_413_and_stores_nothing(world, run, monkeypatch, tmp_path):
    monkeypatch.setattr(results_api, "MAX_ARTIFACT_BYTES", 10)
    response = world.api("owner").multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("big.bin", b"x" * 11)})
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert Artifact.objects.count() == 0 and not (tmp_path / "storage" / "runs").exists()
