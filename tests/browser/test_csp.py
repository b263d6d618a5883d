"""Every page works under Kiln's Content-Security-Policy (no inline script; eval only where WebGL charts need it)."""

from __future__ import annotations

import math

import pytest
from django.conf import settings
from django.test import Client

from webapp.csp import CONTENT_SECURITY_POLICY, EVAL_POLICY
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _signed_in(page, live_server):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="cora", password="browser-test-pw")
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    return user


def test_pages_charts_editor_and_api_docs_run_under_the_csp(live_server, page):
    """The `page` fixture fails the test on any script error or CSP refusal."""
    user = _signed_in(page, live_server)
    project = Project.objects.create(slug="csp", name="CSP", owner_user=user)
    parameters = {"optimizer.lr": {"values": [0.1, 0.01]}, "dropout": {"values": [0.0, 0.2]}}
    spec = {"name": "sweep", "recipe": {"model": "mlp"}, "sweep": {"parameters": parameters}}
    submitted = run_submit(user=user, project=project, spec=spec)
    for run in submitted.runs:
        metrics_log(run_id=run.id, points=[MetricPoint("loss", s, math.exp(-s / 10), 1.7e9 + s) for s in range(30)])
    Run.objects.update(state=RunState.SUCCEEDED)
    run = submitted.runs[0]

    response = page.goto(f"{live_server.url}/runs/{run.id}/")
    assert response is not None and response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page.wait_for_selector(".chart[data-metric-key=loss] .main-svg", timeout=15_000)  # Plotly drew under the CSP
    page.goto(f"{live_server.url}/p/{project.id}/compare/?runs={run.id},{submitted.runs[1].id}")
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)
    response = page.goto(f"{live_server.url}/p/{project.id}/sweeps/{submitted.sweep.id}/?best=loss&mode=min")
    assert response is not None and response.headers["content-security-policy"] == EVAL_POLICY  # WebGL parcoords
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)
    page.wait_for_selector("#parcoords .parcoords", timeout=15_000)
    page.goto(f"{live_server.url}/p/{project.id}/submit/?clone={run.id}")
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/p/{project.id}/")
    page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/api/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)  # Swagger UI rendered the operations
