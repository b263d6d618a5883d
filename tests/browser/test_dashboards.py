"""Comparing runs in a real browser: curves, smoothing, x-axis, parallel coordinates, saving and sharing."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from webapp.accounts.models import Role, Team
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project, Visibility
from webapp.projects.services import project_set_visibility

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def make_user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=username, password="browser-test-pw")


def logged_in_page(browser, live_server, user):
    """A fresh browser context holding `user`'s session (no trip through the login form)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{
        "name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url,
    }])
    return context, context.new_page()


def finished_run(owner, project, lr: float, *, points: int, minutes_ago: int) -> Run:
    spec = {"name": f"lr-{lr}", "recipe": {"model": "mlp", "optimizer": {"lr": lr}}}
    run = run_submit(user=owner, project=project, spec=spec).runs[0]
    batch = [
        MetricPoint("loss", step, 0.1 + 0.2 * lr + 2.0 * math.exp(-step * lr / 1500) + 0.03 * math.sin(step / 7), 1.7e9 + step * 0.2)
        for step in range(points)
    ]
    batch += [MetricPoint("epoch", step, float(step // 500), 1.7e9 + step * 0.2) for step in range(0, points, 100)]
    for start in range(0, len(batch), 10_000):
        metrics_log(run_id=run.id, points=batch[start : start + 10_000])
    Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED, finished_at=timezone.now() - timedelta(minutes=minutes_ago))
    return run


def wait_for_charts(page) -> None:
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)


def test_compare_two_runs_tune_the_view_save_it_and_open_it_as_a_teammate(live_server, browser, screenshot):
    owner, teammate = make_user("olive"), make_user("tom")
    team = Team.objects.create(slug="vision", name="Vision")
    team.memberships.create(user=teammate, role=Role.VIEWER)
    team.memberships.create(user=owner, role=Role.ADMIN)
    project = Project.objects.create(slug="mnist", name="MNIST", owner_user=owner)
    project_set_visibility(user=owner, project=project, visibility=Visibility.TEAM, team=team)
    runs = [finished_run(owner, project, lr, points=6000, minutes_ago=5 - i) for i, lr in enumerate((0.5, 2.0))]

    context, page = logged_in_page(browser, live_server, owner)
    page.goto(f"{live_server.url}/p/{project.id}/compare/?runs={runs[0].id},{runs[1].id}")
    wait_for_charts(page)
    loss = page.locator(".plot[data-key='loss']")
    assert loss.evaluate("div => div.data.length") == 2
    assert loss.evaluate("div => Math.max(...div.data.map(t => t.x.length))") <= 1500  # downsampled on the server
    raw_y = loss.evaluate("div => div.data[0].y[200]")

    page.locator("#smoothing").fill("0.9")
    page.wait_for_function("() => document.location.search.includes('smooth=0.9')")
    assert loss.evaluate("div => div.data.find(t => t.uid.startsWith('run-')).y[200]") != raw_y  # drawn over the faded raw curve

    page.select_option("#x-axis", "rel")
    page.wait_for_function("() => document.location.search.includes('x=rel')")
    wait_for_charts(page)
    loss = page.locator(".plot[data-key='loss']")
    assert loss.evaluate("div => div.layout.xaxis.title.text") == "relative time (s)"
    assert loss.evaluate("div => div.data[0].x[0]") == 0
    page.select_option("#best-key", "loss")
    assert page.locator("#summary-table tr.best").count() == 1
    screenshot(page, "compare_two_runs")  # the README's compare.png: test_charts.py

    page.get_by_text("Parallel coordinates", exact=True).click()
    page.wait_for_selector("#parcoords .parcoords", timeout=10_000)
    assert page.locator("#parcoords").evaluate("div => div.data[0].dimensions.length") >= 2
    page.locator("#parcoords-section").scroll_into_view_if_needed()
    screenshot(page, "parallel_coordinates_two_runs")

    page.fill("#save-form input[name=name]", "Learning rates")
    page.click("#save-form button[type=submit]")
    page.wait_for_selector("h1:has-text('Learning rates')")
    dashboard_url = page.url.split("?")[0]
    context.close()

    context, page = logged_in_page(browser, live_server, teammate)
    page.goto(dashboard_url)
    wait_for_charts(page)
    assert page.locator("#smoothing").input_value() == "0.9"
    assert page.locator("#x-axis").input_value() == "rel"
    assert page.locator(".plot[data-key='loss']").evaluate("div => div.data.filter(t => t.uid.startsWith('run-')).length") == 2
    assert page.locator("#save-form").count() == 0  # a viewer may look, not save
    context.close()


def test_sweep_page_draws_parallel_coordinates_and_best_so_far(live_server, browser, screenshot):
    owner = make_user("sam")
    project = Project.objects.create(slug="sweeps", name="Sweeps", owner_user=owner)
    spec = {"name": "lr sweep", "recipe": {"model": "mlp"},
            "sweep": {"parameters": {"optimizer.lr": {"values": [0.3, 0.1, 0.03, 0.01]}, "dropout": {"values": [0.0, 0.2]}}}}
    submitted = run_submit(user=owner, project=project, spec=spec)
    for i, run in enumerate(submitted.runs):
        final = 0.2 + abs(math.log10(run.params["optimizer.lr"]) + 1.5) * 0.3 + run.params["dropout"]
        metrics_log(run_id=run.id, points=[MetricPoint("loss", s, final + 1.0 / (s + 1), 1.7e9 + s) for s in range(20)])
        Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED, finished_at=timezone.now() - timedelta(minutes=30 - i))
    assert submitted.sweep is not None

    context, page = logged_in_page(browser, live_server, owner)
    page.goto(f"{live_server.url}/p/{project.id}/sweeps/{submitted.sweep.id}/?best=loss&mode=min")
    wait_for_charts(page)
    assert page.locator("#parcoords .parcoords").count() == 1
    best = page.locator("#best-so-far").evaluate("div => div.data[1].y")
    assert best == sorted(best, reverse=True) and len(best) == 8
    screenshot(page, "sweep_lr_dropout")
    context.close()


def test_curves_of_a_running_run_grow_without_a_reload(live_server, browser):
    owner = make_user("rita")
    project = Project.objects.create(slug="live", name="Live", owner_user=owner)
    run = run_submit(user=owner, project=project, spec={"name": "live", "recipe": {"model": "mlp"}}).runs[0]
    Run.objects.filter(id=run.id).update(state=RunState.RUNNING)
    metrics_log(run_id=run.id, points=[MetricPoint("loss", s, 1.0 / (s + 1), 1.7e9 + s) for s in range(10)])

    context, page = logged_in_page(browser, live_server, owner)
    page.goto(f"{live_server.url}/p/{project.id}/compare/?runs={run.id}")
    wait_for_charts(page)
    loss = page.locator(".plot[data-key='loss']")
    assert loss.evaluate("div => div.data[0].x.length") == 10

    metrics_log(run_id=run.id, points=[MetricPoint("loss", s, 1.0 / (s + 1), 1.7e9 + s) for s in range(10, 25)])
    page.wait_for_function("() => document.querySelector(\".plot[data-key='loss']\").data[0].x.length === 25", timeout=15_000)
    Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED, finished_at=timezone.now())
    page.wait_for_selector("#status:has-text('All runs have finished')", timeout=15_000)
    context.close()


def test_the_compare_view_asks_once_for_every_chart_and_draws_many_points_with_webgl(live_server, browser):
    owner = make_user("wendy")
    project = Project.objects.create(slug="many", name="Many", owner_user=owner)
    runs = [finished_run(owner, project, 0.5 + i / 10, points=1000, minutes_ago=30 - i) for i in range(21)]

    context, page = logged_in_page(browser, live_server, owner)
    data_requests: list[str] = []
    page.on("request", lambda request: data_requests.append(request.url) if "/compare/data/" in request.url else None)
    page.goto(f"{live_server.url}/p/{project.id}/compare/?runs={','.join(str(run.id) for run in runs)}")
    wait_for_charts(page)
    assert len(data_requests) == 1 and "key=epoch" in data_requests[0] and "key=loss" in data_requests[0]
    loss, epoch = page.locator(".plot[data-key='loss']"), page.locator(".plot[data-key='epoch']")
    assert loss.evaluate("div => div.data.reduce((n, t) => n + t.x.length, 0)") == 21_000
    assert loss.evaluate("div => div.data[0].x.slice(0, 3)") == [0, 1, 2]  # steps rebuilt from their differences
    webgl = page.evaluate("() => Boolean(document.createElement('canvas').getContext('webgl'))")
    assert set(loss.evaluate("div => div.data.map(t => t.type)")) == {"scattergl" if webgl else "scatter"}
    assert set(epoch.evaluate("div => div.data.map(t => t.type)")) == {"scatter"}  # 210 points: SVG
    context.close()
