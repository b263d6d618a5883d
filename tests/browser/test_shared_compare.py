"""A project's public link, in a real browser with nobody signed in: pick runs, compare them, export,
find nothing to write; and a shared run's page fills its progress bar by step of total, live."""

from __future__ import annotations

import math

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project, Visibility
from webapp.projects.services import project_set_visibility

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def public_project():
    owner = get_user_model().objects.create_user(username="pia", password="browser-test-pw")
    project = Project.objects.create(slug="open", name="Open MNIST", owner_user=owner)
    project_set_visibility(user=owner, project=project, visibility=Visibility.PUBLIC)
    project.refresh_from_db()
    return owner, project


def finished_run(owner, project, lr: float, points: int) -> Run:
    run = run_submit(user=owner, project=project, spec={"name": f"lr-{lr}", "recipe": {"model": "mlp", "optimizer": {"lr": lr}}}).runs[0]
    batch = [MetricPoint("loss", step, 0.1 + 2.0 * math.exp(-step * lr / 1500) + 0.02 * math.sin(step / 5), 1.7e9 + step)
             for step in range(points)]
    for start in range(0, len(batch), 10_000):
        metrics_log(run_id=run.id, points=batch[start : start + 10_000])
    Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED, finished_at=timezone.now())
    return run


def test_a_public_link_compares_two_runs_exports_them_and_offers_nothing_writable(live_server, page, screenshot):
    owner, project = public_project()
    runs = [finished_run(owner, project, lr, points=6000) for lr in (0.5, 2.0)]
    finished_run(owner, project, 1.0, points=10)  # a third run, left out of the comparison
    token = project.public_token
    shared = f"/share/{token}/"

    page.goto(live_server.url + shared)
    for run in runs:
        page.check(f".run-select[value='{run.id}']")
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)
    assert page.url.startswith(f"{live_server.url}{shared}compare/?runs=")
    loss = page.locator(".plot[data-key='loss']")
    assert loss.evaluate("div => div.data.filter(t => t.visible !== false && t.x.length).length") >= 2
    assert loss.evaluate("div => Math.max(...div.data.map(t => t.x.length))") <= 1500  # downsampled on the server
    assert page.locator("#summary-table tbody tr").count() == 2

    page.locator("#smoothing").fill("0.6")  # the view's settings stay in the URL, under the link
    page.wait_for_function("() => document.location.search.includes('smooth=0.6')")
    assert page.evaluate("location.pathname") == f"{shared}compare/"

    csv_link = page.locator("#csv-link")
    assert csv_link.get_attribute("href").startswith(f"{shared}compare/export.csv?")
    with page.expect_download() as caught:
        csv_link.click()
    with open(caught.value.path(), encoding="utf-8") as handle:
        rows = [line.split(",") for line in handle.read().splitlines()]
    assert rows[0] == ["run_id", "run_number", "run_name", "key", "step", "value", "wall_time"]
    assert len(rows) == 1 + 2 * 6000  # every point at full resolution, of the two runs picked only
    assert {row[0] for row in rows[1:]} == {str(run.id) for run in runs}
    with page.expect_download() as image:
        page.click("#png-all")
    assert image.value.suggested_filename.endswith(".png")
    screenshot(page, "shared_compare")

    main = page.locator("main")
    assert main.locator("form[method=post], #save-form, input[name=csrfmiddlewaretoken]").count() == 0
    hrefs = main.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs and all(href.startswith((shared, "?")) for href in hrefs), hrefs

    page.click("main .crumbs a:has-text('Dashboards')")
    expect(page.locator("h1")).to_have_text("Dashboards")
    assert page.evaluate("location.pathname") == f"{shared}dashboards/"
    assert page.locator("main form, main button").count() == 0


def test_a_shared_run_page_fills_its_bar_by_step_of_total_as_progress_arrives(live_server, page):
    owner, project = public_project()
    run = run_submit(user=owner, project=project, spec={"name": "steps", "recipe": {"model": "mlp"}}).runs[0]
    run_transition(run_id=run.id, from_states=("queued",), to_state="scheduled", reason="placed", new_attempt=True)
    run_transition(run_id=run.id, from_states=("scheduled",), to_state="running", reason="started")
    Run.objects.filter(id=run.id).update(progress={"step": 300, "total": 1000, "epoch": 0, "epochs": 3, "eta_seconds": 90.0})

    page.goto(f"{live_server.url}/share/{project.public_token}/runs/{run.id}/")
    bar = page.locator("#run-progress-bar")
    assert bar.is_visible() and bar.evaluate("b => [b.value, b.max]") == [300, 1000]
    assert page.locator("#run-progress").inner_text() == "step 300 of 1000 · epoch 0 of 3 · about 1m 30s left"

    Run.objects.filter(id=run.id).update(progress={"step": 700, "total": 1000, "epoch": 2, "epochs": 3, "eta_seconds": 20.0})
    expect(page.locator("#run-progress")).to_have_text("step 700 of 1000 · epoch 2 of 3 · about 20s left", timeout=10_000)
    assert bar.evaluate("b => [b.value, b.max]") == [700, 1000]
