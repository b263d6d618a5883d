"""The run page, its live JSON feeds, its actions and its downloads."""

import gzip

import pytest
from django.test import Client

from webapp.experiments.assets import PLOTLY_VERSION
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.live import MAX_POINTS, downsample
from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, logs_append, metrics_log
from webapp.projects.services import project_set_visibility

pytestmark = pytest.mark.django_db


def test_run_page_shows_header_timeline_config_params_and_checkpoint(world):
    run = world.run
    run_transition(run_id=run.id, from_states=("queued",), to_state="scheduled", reason="placed on gpu-box", new_attempt=True)
    page = world.client("viewer").get(f"/runs/{run.id}/", follow=True).content.decode()
    assert f"#{run.number} baseline" in page and "state-scheduled" in page and "olive" in page
    assert "placed on gpu-box" in page and "submitted" in page  # the timeline
    assert "1 of 3" in page  # attempt
    assert "optimizer.lr" in page and "model: mlp" in page  # params and the YAML spec
    assert "model.safetensors" in page and f"/runs/{run.id}/artifacts/" in page
    assert 'id="run-live"' in page and f"/assets/plotly-gl2d-{PLOTLY_VERSION}.min.js" in page
    assert "No system metrics yet" in page  # it may still get some
    run_transition(run_id=run.id, from_states=("scheduled",), to_state="failed", reason="placed on a bad box")
    page = world.client("viewer").get(f"/runs/{run.id}/", follow=True).content.decode()
    assert "No system metrics were recorded" in page and "No system metrics yet" not in page


def test_run_page_lists_models_with_their_signature_and_a_link_per_format(world):
    from django.core.files.base import ContentFile

    from webapp.experiments.results import artifact_store

    signature = {"inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 16]}],
                 "outputs": [{"name": "output", "dtype": "float32", "shape": ["batch", 3]}]}
    ids = [artifact_store(run_id=world.run.id, name=name, kind="model", file=ContentFile(b"m", name=name),
                          metadata={"model": "model", "format": fmt, "signature": signature}).id
           for fmt, name in (("engine", "model.pt"), ("onnx", "model.onnx"))]
    page = world.client("viewer").get(f"/runs/{world.run.id}/", follow=True).content.decode()
    assert "<h2>Models</h2>" in page and "input: float32[batch, 16]" in page and "output: float32[batch, 3]" in page
    assert all(f"/runs/{world.run.id}/artifacts/{i}/" in page for i in ids) and ">ONNX</a>" in page


def test_live_data_is_embedded_for_the_first_paint(world):
    response = world.client("owner").get(f"/runs/{world.run.id}/", follow=True)
    live = response.context["live"]
    assert live["series"]["loss"]["steps"] == [0, 1, 2, 3, 4]
    assert [line["text"] for line in live["logs"]] == ["epoch 0", "epoch 1", "epoch 2"]
    status = live["status"]
    assert {key: status[key] for key in ("state", "label", "final", "pending_reason", "attempt", "started_at", "worker")} == {
        "state": "queued", "label": "Queued", "final": False, "pending_reason": "waiting for the scheduler",
        "attempt": 0, "started_at": "", "worker": "",
    }
    assert [(e["state"], e["reason"]) for e in status["events"]] == [("queued", "submitted")]


def test_metrics_feed_returns_only_points_after_the_last_step_per_key(world):
    client = world.client("owner")
    url = f"/runs/{world.run.id}/metrics.json"
    assert client.get(url).json()["series"]["loss"]["steps"] == [0, 1, 2, 3, 4]
    assert client.get(url, {"since": "loss:4"}).json()["series"] == {}
    metrics_log(run_id=world.run.id, points=[MetricPoint("loss", 5, 0.1, 2.0), MetricPoint("val/acc", 5, 0.9, 2.0)])
    data = client.get(url, {"since": "loss:4"}).json()
    assert data["series"] == {"loss": {"steps": [5], "values": [0.1]}, "val/acc": {"steps": [5], "values": [0.9]}}
    assert client.get(url, {"since": ["loss:5", "val/acc:5"]}).json()["series"] == {}
    assert data["status"]["state"] == "queued"
    assert client.get(url, {"since": "garbage"}).status_code == 200


def test_non_finite_metric_values_come_back_as_null(world):
    metrics_log(run_id=world.run.id, points=[MetricPoint("loss", 9, float("nan"), 3.0)])
    data = world.client("owner").get(f"/runs/{world.run.id}/metrics.json", {"since": "loss:4"}).json()
    assert data["series"]["loss"] == {"steps": [9], "values": [None]}


def test_logs_feed_returns_lines_after_the_last_seq(world):
    client = world.client("owner")
    url = f"/runs/{world.run.id}/logs.json"
    assert [line["seq"] for line in client.get(url).json()["lines"]] == [0, 1, 2]
    assert client.get(url, {"after": "2"}).json()["lines"] == []
    logs_append(run_id=world.run.id, lines=[(3, "stderr", "warning: <b>careful</b>")])
    assert client.get(url, {"after": "2"}).json()["lines"] == [{"seq": 3, "stream": "stderr", "text": "warning: <b>careful</b>"}]
    assert client.get(url, {"after": "x"}).status_code == 200


def test_feeds_report_a_final_state_so_the_page_stops_polling(world):
    run_transition(run_id=world.run.id, from_states=("queued",), to_state="failed", reason="boom")
    status = world.client("owner").get(f"/runs/{world.run.id}/logs.json", {"after": "2"}).json()["status"]
    assert status["final"] is True and status["state"] == "failed"


def test_long_series_are_downsampled_keeping_extremes_and_the_last_point():
    steps = list(range(10_000))
    values = [float(i % 100) for i in steps]
    values[5003] = 1e6
    kept_steps, kept_values = downsample(steps, values, MAX_POINTS)
    assert len(kept_steps) <= MAX_POINTS + 1
    assert kept_steps == sorted(kept_steps) and kept_steps[-1] == 9999
    assert 1e6 in kept_values and 0.0 in kept_values


def test_cancel_rerun_and_notes(world):
    client = world.client("editor")
    assert client.post(f"/runs/{world.run.id}/notes/", {"notes": "lr too high?"}).status_code == 302
    world.run.refresh_from_db()
    assert world.run.notes == "lr too high?"
    response = client.post(f"/runs/{world.run.id}/rerun/")
    rerun = Run.objects.order_by("-id").first()
    assert response["Location"] == f"/p/{rerun.project_id}/runs/{rerun.number}/" and rerun.cloned_from_id == world.run.id
    assert rerun.spec == world.run.spec and rerun.owner == world.users["editor"]
    assert client.post(f"/runs/{world.run.id}/cancel/").status_code == 302
    world.run.refresh_from_db()
    assert world.run.state == "cancelled"
    page = client.get(f"/runs/{world.run.id}/", follow=True).content.decode()
    assert "Cancel run" not in page
    again = client.post(f"/runs/{world.run.id}/cancel/", follow=True)
    assert "had already finished" in again.content.decode()


def test_code_run_rerun_keeps_the_code(world):
    response = world.client("owner").post(f"/runs/{world.code_run.id}/rerun/")
    rerun = Run.objects.order_by("-id").first()
    assert response.status_code == 302 and rerun.code_sha256 == world.code_run.code_sha256


def test_downloads_are_attachments_streamed_from_storage(world):
    client = world.client("viewer")
    checkpoint = world.run.artifacts.get()
    response = client.get(f"/runs/{world.run.id}/artifacts/{checkpoint.id}/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="model.safetensors"'
    assert b"".join(response.streaming_content) == b"weights"
    response = client.get(f"/runs/{world.code_run.id}/code/")
    assert response["Content-Disposition"] == 'attachment; filename="train.py"'
    assert b"".join(response.streaming_content).startswith(b"import engine.track")
    # an artifact of another run is not reachable through this run's URL
    assert client.get(f"/runs/{world.code_run.id}/artifacts/{checkpoint.id}/").status_code == 404


def test_plotly_is_served_locally_compressed_and_cacheable():
    client = Client()
    response = client.get(f"/assets/plotly-gl2d-{PLOTLY_VERSION}.min.js", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    assert b"plotly" in gzip.decompress(response.content)[:2000].lower()
    plain = client.get(f"/assets/plotly-gl2d-{PLOTLY_VERSION}.min.js")
    assert "Content-Encoding" not in plain and len(plain.content) > 1_000_000
    assert client.get(f"/assets/plotly-gl2d-{PLOTLY_VERSION}.min.js", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert client.get("/assets/plotly-gl2d-0.0.1.min.js").status_code == 404


def test_run_page_queries_do_not_grow_with_events_and_artifacts(world, django_assert_max_num_queries):
    client = world.client("owner")
    with django_assert_max_num_queries(20):
        client.get(f"/p/{world.project.id}/runs/{world.run.number}/")


def test_progress_is_shown_in_words(world):
    Run.objects.filter(id=world.run.id).update(progress={"epoch": 3, "epochs": 10, "eta_seconds": 3725})
    page = world.client("owner").get(f"/runs/{world.run.id}/", follow=True).content.decode()
    assert "epoch 3 of 10 · about 1h 02m left" in page


def test_step_progress_fills_the_bar_by_step_of_total(world):
    Run.objects.filter(id=world.run.id).update(progress={"step": 300, "total": 1000, "epoch": 1, "epochs": 3})
    page = world.client("owner").get(f"/runs/{world.run.id}/", follow=True).content.decode()
    assert '<progress id="run-progress-bar" max="1000" value="300">' in page
    assert '<span id="run-progress">step 300 of 1000 · epoch 1 of 3</span>' in page


def test_public_link_downloads_stay_under_the_link(world):
    project_set_visibility(user=world.users["owner"], project=world.project, visibility="public")
    token = world.project.public_token
    anonymous = Client()
    page = anonymous.get(f"/share/{token}/runs/{world.code_run.id}/").content.decode()
    assert f"/share/{token}/runs/{world.code_run.id}/code/" in page and "Clone &amp; edit" not in page
    response = anonymous.get(f"/share/{token}/runs/{world.code_run.id}/code/")
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"import")
    checkpoint = world.run.artifacts.get()
    response = anonymous.get(f"/share/{token}/runs/{world.run.id}/artifacts/{checkpoint.id}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"weights"
    assert anonymous.get(f"/share/wrong/runs/{world.run.id}/artifacts/{checkpoint.id}/").status_code == 404
    assert anonymous.get(f"/runs/{world.run.id}/artifacts/{checkpoint.id}/").status_code == 404


def test_a_long_series_is_drawn_from_its_rollup_without_reading_every_point(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from webapp.experiments.live import metric_series

    run = world.run
    points = [MetricPoint("reward", step, float(step % 100), 0.0) for step in range(20_000)]
    points[12_345] = MetricPoint("reward", 12_345, 1e6, 0.0)  # one spike
    for start in range(0, len(points), 5000):
        metrics_log(run_id=run.id, points=points[start:start + 5000])
    with CaptureQueriesContext(connection) as queries:
        series = metric_series(run)
    assert not any('FROM "experiments_metric" ' in q["sql"] for q in queries.captured_queries)
    reward = series["reward"]
    assert len(reward["steps"]) <= MAX_POINTS and 1e6 in reward["values"] and reward["steps"][-1] == 19_999
    assert metric_series(run, {"reward": 19_990, "loss": 4})["reward"]["steps"] == list(range(19_991, 20_000))
    assert metric_series(run, {"reward": 19_999, "loss": 4}) == {}  # nothing new
    metrics_log(run_id=run.id, points=[MetricPoint("reward", 20_000, 7.0, 0.0)])
    assert metric_series(run, {"reward": 19_999, "loss": 4}) == {"reward": {"steps": [20_000], "values": [7.0]}}
