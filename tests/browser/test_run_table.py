"""The run table shows what matters: varying params, recent metrics, a duration; a column picker remembered per project."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project, RunTableColumns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "a-long-browser-pass-42"
LONG_NAME = "a-very-long-run-name-that-says-everything-about-the-architecture-and-the-data-augmentation-used"


def _headers(page) -> list[str]:
    return page.locator("#run-table thead th[data-column]").evaluate_all("ths => ths.map(t => t.dataset.column)")


def _cell(page, column: str) -> str:
    """The first row's text under the header of `column`."""
    index = page.locator("#run-table thead th").evaluate_all(f"ths => ths.findIndex(t => t.dataset.column === {column!r})")
    return page.locator("#run-table tbody tr").first.locator("td").nth(index).inner_text()


def test_the_run_table_defaults_to_what_varies_and_remembers_a_picked_set_of_columns(live_server, page, login):
    owner = get_user_model().objects.create_user(username="tab", password=PASSWORD)
    project = Project.objects.create(slug="cnn", name="CNN", owner_user=owner)
    other = Project.objects.create(slug="other", name="Other", owner_user=owner)
    now = timezone.now()
    for index in range(9):
        lr = [0.01, 0.003, 0.1][index % 3]
        name = LONG_NAME if index == 8 else f"run-{index}"
        spec = {"name": name, "recipe": {"model": "mlp", "optimizer": {"lr": lr}}}
        run = run_submit(user=owner, project=project, spec=spec).runs[0]
        Run.objects.filter(id=run.id).update(state="succeeded", started_at=now - timedelta(seconds=65),
                                             finished_at=now)
        metrics_log(run_id=run.id, points=[MetricPoint("loss", s, 1.0 / (s + 1), 1.0 + s) for s in range(3)]
                    + [MetricPoint("sys/cpu_percent", s, 50.0, 1.0 + s) for s in range(3)])
        metrics_log(run_id=run.id, points=[MetricPoint("val_accuracy", 0, 0.5 + index / 100, 5.0)])
    run_submit(user=owner, project=other, spec={"name": "lonely", "recipe": {"model": "mlp"}})

    login(page, "tab", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.id}/")
    columns = _headers(page)
    assert "param:optimizer.lr" in columns  # it varies between the runs
    assert "param:optimizer.momentum" not in columns and "param:seed" not in columns  # these do not
    assert columns.index("metric:val_accuracy:last") < columns.index("metric:loss:last")  # the newest logged first
    assert not any(c.startswith("metric:sys/") for c in columns)
    assert "attr:duration" in columns
    durations = page.locator("#run-table tbody tr td.num").all_inner_texts()
    assert "1m 05s" in durations

    # a long name is cut short, the full name is on hover, the other columns stay on screen
    link = page.locator(f"#run-table a[title='{LONG_NAME}']")
    assert link.evaluate("a => a.scrollWidth > a.clientWidth") and link.inner_text() == LONG_NAME
    scroller = page.locator(".runs-scroll")
    assert scroller.evaluate("s => s.scrollWidth <= s.clientWidth"), page.locator("#run-table thead th").evaluate_all(
        "ths => ths.map(t => t.textContent.trim() + ':' + t.getBoundingClientRect().width).join(' ')")

    # the header stays at the top while the rows scroll under it
    page.set_viewport_size({"width": 1280, "height": 360})
    header = page.locator("#run-table thead th").nth(2)
    top = header.evaluate("th => th.getBoundingClientRect().top")
    scroller.evaluate("s => { s.scrollTop = 120; }")
    assert scroller.evaluate("s => s.scrollTop") > 0
    assert abs(header.evaluate("th => th.getBoundingClientRect().top") - scroller.evaluate(
        "s => s.getBoundingClientRect().top")) < 2
    assert header.evaluate("th => th.getBoundingClientRect().top") >= top - 130
    page.set_viewport_size({"width": 1280, "height": 800})

    # pick: loss's maximum and the worker in, the learning rate out
    page.click("#column-picker summary")
    page.check("#column-picker input[value='metric:loss:max']")
    page.check("#column-picker input[value='attr:worker']")
    page.uncheck("#column-picker input[value='param:optimizer.lr']")
    page.click("#column-picker button[type=submit]:not([name])")
    expect(page.locator(".messages")).to_contain_text("Columns saved for this project.")
    picked = _headers(page)
    assert "metric:loss:max" in picked and "attr:worker" in picked and "param:optimizer.lr" not in picked
    assert page.locator("#run-table th[data-column='metric:loss:max']").inner_text().startswith("loss (max)")
    assert _cell(page, "metric:loss:max") == "1" and _cell(page, "metric:loss:last") == "0.3333"

    page.goto(f"{live_server.url}/p/{project.id}/")  # remembered on the server, for this project only
    assert _headers(page) == picked
    assert list(RunTableColumns.objects.filter(user=owner).values_list("project_id", flat=True)) == [project.id]
    page.goto(f"{live_server.url}/p/{other.id}/")
    assert "attr:worker" not in _headers(page)

    page.goto(f"{live_server.url}/p/{project.id}/")
    page.click("#column-picker summary")
    page.click("#column-picker button[name=reset]")
    assert _headers(page) == columns
