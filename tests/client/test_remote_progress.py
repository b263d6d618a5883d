"""`track.progress` from a script outside Kiln (KILN_URL, KILN_TOKEN, KILN_RUN_ID): the run page's bar, as inside Kiln."""

from __future__ import annotations

import json

import pytest
from django.test import Client as DjangoClient

from engine.track.remote import MetricBatcher, MetricsRefused
from webapp.accounts.tokens import token_create
from webapp.client.client import Client
from webapp.experiments.job_progress import job_progress_checked
from webapp.experiments.models import Run

from ..webapp.factories import UserFactory
from .outside_kiln import new_run, run_outside_kiln

PROGRESS_SCRIPT = """
import engine.track as track
for step in range(1, 51):
    track.log({"loss": 1.0 / step}, step=step)
    track.progress(step=step, total=200, epoch=step // 25, epochs=8)
print(track.run_dir())
# no finish(): the exit itself sends the last report
"""


def _post_progress(server, run_id: int, body: dict, token: str | None = None):
    api = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {token or server.token}")
    return api.post(f"/api/runs/{run_id}/progress", json.dumps(body), content_type="application/json")


def test_a_script_outside_kiln_moves_the_run_pages_progress_bar(server, tmp_path):
    client = Client(server.url, server.token)
    run = new_run(server, client)
    done = run_outside_kiln(server, run["id"], PROGRESS_SCRIPT, tmp_path)
    local = json.loads((tmp_path / done.stdout.strip() / "progress.json").read_text())

    progress = client.get(run)["progress"]
    assert progress == job_progress_checked(local)  # what the worker stores from the same record inside Kiln
    assert (progress["step"], progress["total"], progress["epoch"], progress["epochs"]) == (50, 200, 2, 8)

    page = DjangoClient()
    page.force_login(server.user)
    shown = page.get(f"/runs/{run['id']}/metrics.json").json()["status"]["progress"]  # what the run page polls
    assert shown["bar"] == {"value": 50, "max": 200}
    assert shown["text"].startswith("step 50 of 200 · epoch 2 of 8")


@pytest.mark.parametrize(("body", "message"), [
    ({"step": 11, "total": 10, "time": 1.0}, "progress: step must be at most total (10), got 11"),
    ({"step": 1.5, "total": 10, "time": 1.0}, "progress: step must be an int, got float 1.5"),
    ({"epoch": 1, "time": 1.0}, "progress: epoch= needs epochs= too (epoch of epochs)"),
    ({"step": 1, "total": 10}, "progress: time must be seconds since the epoch, got None"),
])
def test_a_bad_report_is_refused_with_the_workers_message_and_changes_nothing(server, body, message):
    run = new_run(server, Client(server.url, server.token))
    assert _post_progress(server, run["id"], {"step": 3, "total": 10, "eta_seconds": 7, "time": 2.0}).status_code == 200
    answer = _post_progress(server, run["id"], body)
    assert answer.status_code == 422, answer.content
    assert answer.json()["message"] == message
    assert Run.objects.get(id=run["id"]).progress == {"step": 3, "total": 10, "eta_seconds": 7.0, "at": 2.0}


def test_an_unknown_field_or_someone_elses_run_is_refused(server):
    run = new_run(server, Client(server.url, server.token))
    answer = _post_progress(server, run["id"], {"step": 1, "total": 2, "time": 1.0, "percent": 50})
    assert answer.status_code == 422 and "percent" in answer.content.decode()
    outsider = token_create(user=UserFactory(username="mallory"), name="t")[1]
    assert _post_progress(server, run["id"], {"step": 1, "total": 2, "time": 1.0}, token=outsider).status_code == 404
    assert Run.objects.get(id=run["id"]).progress == {}


def test_a_report_the_server_refuses_is_raised_by_the_batcher(server):
    run = new_run(server, Client(server.url, server.token))
    batcher = MetricBatcher(server.url, server.token, run["id"], flush_seconds=0.05)
    batcher.progress({"step": 5, "total": 4, "time": 1.0})  # the job's own check would refuse it; the server does too
    with pytest.raises(MetricsRefused) as refused:
        batcher.flush(timeout=30)
    assert refused.value.status == 422 and "step must be at most total (4)" in str(refused.value)
    batcher.close()
