"""The run page stays live: the duration ticks, progress is a bar, files and status arrive without a reload."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import expect

from webapp.cluster.models import Worker
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run
from webapp.experiments.results import artifact_store
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "a-long-browser-pass-42"


def test_a_running_run_ticks_its_duration_and_shows_new_files_and_state_without_a_reload(
    live_server, page, login, artifacts_in_tmp,
):
    owner = get_user_model().objects.create_user(username="liv", password=PASSWORD)
    project = Project.objects.create(slug="live", name="Live", owner_user=owner)
    run = run_submit(user=owner, project=project, spec={"name": "ticking", "recipe": {"model": "mlp"}}).runs[0]
    run_transition(run_id=run.id, from_states=("queued",), to_state="scheduled", reason="placed", new_attempt=True)
    run_transition(run_id=run.id, from_states=("scheduled",), to_state="running", reason="started")
    Run.objects.filter(id=run.id).update(progress={"epoch": 3, "epochs": 10, "eta_seconds": 125.0})

    login(page, "liv", PASSWORD)
    page.goto(f"{live_server.url}/runs/{run.id}/")
    duration = page.locator("#run-duration")
    first = duration.inner_text()
    expect(duration).not_to_have_text(first, timeout=5_000)

    bar = page.locator("#run-progress-bar")
    assert bar.is_visible() and bar.evaluate("b => [b.value, b.max]") == [3, 10]
    assert "epoch 3 of 10" in page.locator("#run-progress").inner_text()
    assert "left" in page.locator("#run-progress").inner_text()
    assert page.locator("#no-artifacts").is_visible()

    # a checkpoint, a file, a new attempt on a named worker: all appear on the open page
    artifact_store(run_id=run.id, name="ckpt-3.pt", kind="checkpoint", file=ContentFile(b"x" * 2048, name="c"), step=3)
    artifact_store(run_id=run.id, name="report.txt", kind="artifact", file=ContentFile(b"hello", name="r"))
    now = timezone.now()
    worker = Worker.objects.create(name="gpu-box-7", hostname="box", queue="q", started_at=now, heartbeat_at=now)
    Run.objects.filter(id=run.id).update(attempt=2, worker=worker, progress={"epoch": 7, "epochs": 10, "eta_seconds": 30.0})
    page.wait_for_selector("#artifact-table tbody[data-count='2']", timeout=10_000)
    names = page.locator("#artifact-table tbody code:not(.small)").all_inner_texts()
    assert names == ["ckpt-3.pt", "report.txt"]
    assert page.locator("#artifact-table tbody a").first.get_attribute("href").endswith("/")
    assert page.locator("#no-artifacts").is_hidden()
    expect(page.locator("#run-worker")).to_have_text("gpu-box-7", timeout=10_000)
    assert page.locator("#run-attempt").inner_text().startswith("2 of")
    expect(page.locator("#run-progress")).to_contain_text("epoch 7 of 10", timeout=10_000)
    assert bar.evaluate("b => b.value") == 7

    # the run ends: the badge says so, the ETA goes, the duration stops
    run_transition(run_id=run.id, from_states=("running",), to_state="succeeded", reason="done")
    page.wait_for_selector("#run-state[data-state='succeeded']", timeout=10_000)
    page.wait_for_selector("body[data-live-stopped='true']", timeout=10_000)
    assert "left" not in page.locator("#run-progress").inner_text()
    stopped = duration.inner_text()
    page.wait_for_timeout(1_500)
    assert duration.inner_text() == stopped

    page.reload()  # the server's page agrees: a finished run shows no ETA
    assert "left" not in page.locator("#run-progress").inner_text()
    assert page.locator("#artifact-table tbody tr").count() == 2
