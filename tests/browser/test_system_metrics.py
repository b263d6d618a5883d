"""The run page charts system metrics (sys/*) in their own System section, against wall time."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth import get_user_model

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "a-long-browser-pass-42"
SYSTEM_CHART = "#system-charts .chart[data-metric-key='{}']"


def test_system_metrics_are_drawn_on_a_date_axis_apart_from_the_training_metrics(live_server, page, login, screenshot):
    owner = get_user_model().objects.create_user(username="sam", password=PASSWORD)
    project = Project.objects.create(slug="gpu", name="GPU", owner_user=owner)
    run = run_submit(user=owner, project=project, spec={"name": "busy", "recipe": {"model": "mlp"}}).runs[0]
    run_transition(run_id=run.id, from_states=("queued",), to_state="scheduled", reason="placed", new_attempt=True)
    run_transition(run_id=run.id, from_states=("scheduled",), to_state="running", reason="started")
    start = time.time() - 600
    keys = ("sys/cpu_percent", "sys/memory_mb", "sys/processes", "sys/gpu0/util_percent", "sys/gpu0/power_watts")
    metrics_log(run_id=run.id, points=[MetricPoint(key, s, 40.0 + s, start + 10 * s) for key in keys for s in range(30)]
                + [MetricPoint("loss", s, 1.0 / (s + 1), start + s) for s in range(30)])

    login(page, "sam", PASSWORD)
    page.goto(f"{live_server.url}/runs/{run.id}/")
    cpu = page.locator(SYSTEM_CHART.format("sys/cpu_percent"))
    cpu.locator(".main-svg").first.wait_for(timeout=15_000)
    for key in keys:
        assert page.locator(SYSTEM_CHART.format(key)).count() == 1, key
    assert page.locator("#charts .chart").evaluate_all("divs => divs.map(d => d.dataset.metricKey)") == ["loss"]
    assert page.locator("#system-section h2").inner_text() == "System" and page.locator("#no-system").is_hidden()

    assert cpu.evaluate("div => div._fullLayout.xaxis.type") == "date"
    assert page.locator("#charts .chart[data-metric-key=loss]").evaluate("div => div._fullLayout.xaxis.type") == "linear"
    low, high = cpu.evaluate("div => div._fullLayout.xaxis.range.map(v => new Date(v).getTime() / 1000)")
    assert start - 60 < low < high < start + 360  # the axis spans the samples' times
    ticks = cpu.locator(".xtick text").evaluate_all("texts => texts.map(t => t.textContent)")
    assert ticks and not any(re.search(r"\d\.\d+B|e\+?9|17\d{8}", tick) for tick in ticks), ticks
    assert any(re.search(r"\d\d:\d\d", tick) for tick in ticks), ticks  # clock times
    screenshot(page, "run-system-metrics")

    # new samples arrive live, still against time
    metrics_log(run_id=run.id, points=[MetricPoint("sys/cpu_percent", s, 99.0, start + 10 * s) for s in range(30, 40)])
    page.wait_for_selector(SYSTEM_CHART.format("sys/cpu_percent") + "[data-points='40']", timeout=10_000)
    high = cpu.evaluate("div => new Date(div._fullLayout.xaxis.range[1]).getTime() / 1000")
    assert high > start + 380 and cpu.evaluate("div => div._fullLayout.xaxis.type") == "date"
