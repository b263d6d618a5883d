"""Small screens and dark mode in a real browser: no page scrolls sideways at 390 px, the dark theme
follows the system setting, the toggle is remembered, and charts take the theme's colours."""

from __future__ import annotations

import math

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from webapp.accounts.models import Role, Team
from webapp.accounts.tokens import token_create
from webapp.dashboards.models import Dashboard
from webapp.dashboards.state import CompareState
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project, Visibility
from webapp.projects.services import project_set_visibility

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PHONE = {"width": 390, "height": 844}

# The relative luminance (WCAG) of a computed CSS colour such as "rgb(17, 24, 39)".
LUMINANCE_JS = """color => {
  const [r, g, b] = color.match(/[\\d.]+/g).slice(0, 3).map(Number).map(c => {
    c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}"""
BODY_LUMINANCE = f"() => ({LUMINANCE_JS})(getComputedStyle(document.body).backgroundColor)"
CHART_LUMINANCE = f"selector => ({LUMINANCE_JS})(document.querySelector(selector + ' .main-svg').style.background)"


@pytest.fixture
def world(live_server):
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user(username="pia", password="browser-test-pw")
    team = Team.objects.create(slug="vision-research-group", name="Vision research group")
    team.memberships.create(user=owner, role=Role.ADMIN)
    project = Project.objects.create(slug="cifar10-long-project-name", name="CIFAR-10 with a rather long name", owner_user=owner)
    project_set_visibility(user=owner, project=project, visibility=Visibility.TEAM, team=team)
    runs = []
    for lr in (0.003, 0.1):
        spec = {"name": f"resnet-baseline-with-long-name-lr-{lr}", "recipe": {"model": "mlp", "optimizer": {"lr": lr}}}
        run = run_submit(user=owner, project=project, spec=spec).runs[0]
        metrics_log(run_id=run.id, points=[
            MetricPoint(key, step, value, 1.7e9 + step)
            for step in range(50)
            for key, value in (("loss", 2.0 * math.exp(-step * lr)), ("val_accuracy_top1_long_metric_name", 1 - math.exp(-step * lr)))
        ])
        Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED, finished_at=timezone.now())
        runs.append(run)
    Project.objects.create(slug="team-notes", name="Team notes", team=team, visibility=Visibility.PRIVATE)
    dashboard = Dashboard.objects.create(
        project=project, owner=owner, name="learning-rate study",
        state=CompareState(runs=tuple(run.id for run in runs), keys=("loss",)).as_json(),
    )
    token_create(user=owner, name="ci-token-for-the-nightly-pipeline")
    client = Client()
    client.force_login(owner)
    ids = ",".join(str(run.id) for run in runs)
    pages = {
        "home": "/",
        "projects list": "/",
        "project page": f"/p/{project.id}/",
        "run table filtered": f"/p/{project.id}/?state=succeeded",
        "run page": f"/runs/{runs[0].id}/",
        "compare view": f"/p/{project.id}/compare/?runs={ids}",
        "dashboards": f"/p/{project.id}/dashboards/",
        "dashboard": f"/p/{project.id}/dashboards/{dashboard.id}/",
        "submit form": f"/p/{project.id}/submit/",
        "project settings": f"/p/{project.id}/settings/",
        "new project": "/projects/new/",
        "teams": "/teams/",
        "team page": f"/teams/{team.slug}/",
        "tokens": "/tokens/",
        "cluster": "/cluster/",
        "password change": "/accounts/password/",
    }
    return {"cookie": client.cookies[settings.SESSION_COOKIE_NAME].value, "pages": pages, "ids": ids, "project": project}


def phone_context(browser, live_server, world, **options):
    context = browser.new_context(viewport=PHONE, **options)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": world["cookie"], "url": live_server.url}])
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    return context, page, errors


def choose_theme(page, choice: str) -> None:
    """Pick a theme from the top bar, opening the small-screen menu first."""
    if page.get_attribute("#nav-toggle", "aria-expanded") != "true":
        page.click("#nav-toggle")
    page.select_option("#theme-choice", choice)


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_no_page_scrolls_sideways_at_390px_and_the_menu_opens(live_server, browser, world, screenshot):
    context, page, errors = phone_context(browser, live_server, world)
    wide = {}
    for name, path in world["pages"].items():
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        if name in ("compare view", "dashboard", "run page"):
            page.wait_for_selector(".js-plotly-plot", timeout=15_000)
        if overflow(page) > 0:
            wide[name] = overflow(page)
    page.goto(live_server.url + world["pages"]["compare view"])
    page.wait_for_selector(".js-plotly-plot", timeout=15_000)
    chart_width = page.evaluate("document.querySelector('.js-plotly-plot').getBoundingClientRect().width")
    assert chart_width <= PHONE["width"]
    # and grows with the window (Plotly's responsive config)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_function("() => document.querySelector('.js-plotly-plot .main-svg').getBoundingClientRect().width > 500")
    page.set_viewport_size(PHONE)

    # the top bar collapses: the links hide behind a menu button, which opens them (no inline script)
    page.goto(live_server.url + "/")
    assert page.locator(".main-nav a", has_text="Teams").is_hidden()
    page.click("#nav-toggle")
    assert page.locator(".main-nav a", has_text="Teams").is_visible()
    assert page.get_attribute("#nav-toggle", "aria-expanded") == "true"
    assert overflow(page) <= 0
    page.click(".main-nav a:has-text('Teams')")
    page.wait_for_url("**/teams/")
    screenshot(page, "phone-teams")

    # a team's own project is labelled "Team", not "Private"; a change of sharing is told as a sentence
    page.goto(live_server.url + "/")
    assert page.locator("tr:has-text('Team notes') .pill").inner_text() == "Team"
    assert page.locator("tr:has-text('CIFAR-10') .pill").inner_text() == "Team"
    page.goto(live_server.url + world["pages"]["project settings"])
    page.check("input[name=visibility][value=private]")
    page.locator("button[type=submit]", has_text="Save sharing").click()
    page.wait_for_selector("text=CIFAR-10 with a rather long name is now private: only you can see it.")
    assert overflow(page) <= 0

    # logged out: the login page
    context.clear_cookies()
    page.goto(live_server.url + "/accounts/login/")
    if overflow(page) > 0:
        wide["login page"] = overflow(page)
    assert not wide, f"pages wider than 390 px (by px): {wide}"
    context.close()
    assert not errors, errors


def test_dark_theme_follows_the_system_and_the_toggle_is_remembered(live_server, browser, world, screenshot):
    context, page, errors = phone_context(browser, live_server, world, color_scheme="dark")
    compare = live_server.url + world["pages"]["compare view"]
    page.goto(compare)
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)
    assert page.evaluate(BODY_LUMINANCE) < 0.2
    assert page.evaluate(CHART_LUMINANCE, ".plot[data-key='loss']") < 0.2
    screenshot(page, "compare-dark")

    # the run page's charts are dark too
    page.goto(live_server.url + world["pages"]["run page"])
    page.wait_for_selector("#charts .js-plotly-plot", timeout=15_000)
    assert page.evaluate(BODY_LUMINANCE) < 0.2
    page.wait_for_function(f"() => ({CHART_LUMINANCE})('#charts .js-plotly-plot') < 0.2")
    # a chart that appears later (a live run's new metric), drawn in light colours, takes the theme too
    page.evaluate("""() => {
      const div = document.createElement('div'); div.id = 'late-chart'; document.getElementById('charts').appendChild(div);
      Plotly.newPlot(div, [{x: [0, 1], y: [1, 2]}], {paper_bgcolor: '#fff', plot_bgcolor: '#fff'});
    }""")
    page.wait_for_function(f"() => ({CHART_LUMINANCE})('#late-chart') < 0.2")

    # choosing "light" wins over the system setting, re-themes the charts at once and survives a reload
    page.goto(compare)
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)
    choose_theme(page, "light")
    assert page.evaluate(BODY_LUMINANCE) > 0.8
    page.wait_for_function(f"() => ({CHART_LUMINANCE})(\".plot[data-key='loss']\") > 0.8")
    page.reload()
    page.wait_for_selector("body[data-charts-ready='1']", timeout=15_000)
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate(BODY_LUMINANCE) > 0.8
    assert page.evaluate(CHART_LUMINANCE, ".plot[data-key='loss']") > 0.8
    assert page.input_value("#theme-choice") == "light"

    # "dark" on a light system, then "system" again follows the (dark) system setting
    page.emulate_media(color_scheme="light")
    choose_theme(page, "dark")
    page.goto(live_server.url + "/")
    assert page.evaluate(BODY_LUMINANCE) < 0.2
    choose_theme(page, "system")
    assert page.evaluate(BODY_LUMINANCE) > 0.8
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(f"() => ({BODY_LUMINANCE})() < 0.2")
    page.reload()
    assert page.evaluate("localStorage.getItem('kiln-theme')") == "system"
    assert page.evaluate(BODY_LUMINANCE) < 0.2
    context.close()
    assert not errors, errors
