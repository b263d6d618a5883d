"""Runs an unchanged MLflow script logged into Kiln and one a TensorBoard script wrote (then `kiln import`), compared
side by side in the browser."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from webapp.accounts.tokens import token_create
from webapp.experiments.models import Run

mlflow = pytest.importorskip("mlflow", reason="the dev extra installs mlflow-skinny")

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def mlflow_into_kiln(live_server, monkeypatch):
    """The MLflow client pointed at the live Kiln with a user's API token, as a user would set it up."""
    from django.contrib.auth import get_user_model
    from mlflow.tracking import fluent
    from mlflow.utils import request_utils

    user = get_user_model().objects.create_user(username="mia", password="browser-test-pw")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    token = token_create(user=user, name="mlflow")[1]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("KILN_URL", live_server.url)  # `kiln import` uses the same token
    monkeypatch.setenv("KILN_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    cached, sessions = request_utils._cached_get_request_session, []

    def recorded(*args, **kwargs):
        sessions.append(cached(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(request_utils, "_cached_get_request_session", recorded)
    mlflow.set_tracking_uri(live_server.url)
    yield user
    for session in sessions:  # NOTE: keep-alive sockets would hold a live-server thread's database connection
        session.close()
    cached.cache_clear()


def training_script(lr: float) -> None:
    """What an ordinary MLflow script does; nothing in it knows about Kiln."""
    mlflow.set_experiment("digits")
    with mlflow.start_run(run_name=f"lr-{lr}"):
        mlflow.log_params({"lr": lr, "epochs": 30})
        loss = 2.0
        for epoch in range(30):
            loss *= 1 - lr
            mlflow.log_metrics({"loss": loss, "accuracy": 1 - loss / 2}, step=epoch)


def tensorboard_script(log_dir, lr: float) -> None:
    """What an ordinary TensorBoard script does (PyTorch's SummaryWriter API), here outside Kiln."""
    from engine.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=log_dir) as writer:
        loss = 2.0
        for epoch in range(30):
            loss *= 1 - lr
            writer.add_scalar("loss", loss, epoch)


def test_compare_view_of_two_mlflow_logged_runs_and_a_tensorboard_one(live_server, browser, mlflow_into_kiln, tmp_path,
                                                                      monkeypatch):
    training_script(0.05)
    training_script(0.2)
    monkeypatch.chdir(tmp_path)
    tensorboard_script(tmp_path / "tb" / "lr-0.1", 0.1)
    from webapp.client.cli import main

    assert main(["import", "tensorboard", str(tmp_path / "tb"), "--project", "mia/digits"]) == 0
    runs = list(Run.objects.filter(owner=mlflow_into_kiln).order_by("number"))
    assert [(run.kind, run.state, run.name) for run in runs] == [
        ("external", "succeeded", "lr-0.05"), ("external", "succeeded", "lr-0.2"), ("external", "succeeded", "lr-0.1")]

    client = Client()
    client.force_login(mlflow_into_kiln)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                          "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
    try:
        _compare(context, live_server.url, runs)
    finally:
        context.close()


def _compare(context, url: str, runs: list[Run]) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/p/{runs[0].project_id}/compare/?runs={','.join(str(run.id) for run in runs)}")
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)
    loss = page.locator(".plot[data-key='loss']")
    assert loss.evaluate("div => div.data.length") == 3
    assert loss.evaluate("div => div.data.map(t => t.x.length)") == [30, 30, 30]
    assert sorted(loss.evaluate("div => div.data.map(t => t.y[29])")) == pytest.approx(
        sorted([2.0 * 0.95**30, 2.0 * 0.8**30, 2.0 * 0.9**30]), rel=1e-4)  # the chart payload rounds
    assert page.locator(".plot[data-key='accuracy']").count() == 1
    text = page.locator("body").inner_text()
    assert "lr-0.05" in text and "lr-0.2" in text and "0.05" in text and "0.2" in text

    page.goto(f"{url}/runs/{runs[0].id}/")
    assert "external · logged by mlflow, not run by Kiln" in page.locator("#run-kind").inner_text()

    # the links the MLflow client prints ("View run at <tracking URI>/#/experiments/2/runs/6") open Kiln's pages
    page.goto(f"{url}/#/experiments/{runs[0].project_id}/runs/{runs[0].id}")
    page.wait_for_url(f"{url}/p/{runs[0].project_id}/runs/{runs[0].number}/")
    page.goto(f"{url}/#/experiments/{runs[0].project_id}")
    page.wait_for_url(f"{url}/p/{runs[0].project_id}/")
    assert not errors, errors
