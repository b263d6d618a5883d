"""Charts in a real browser, on the compare view and the run page alike: a constant series keeps its
value readable, smoothing draws over the faded raw curve and respects x spacing, one legend per view
with a colour per run that holds across charts and pages, names cut short, tables on one line, and a
scatter that opens on a param that varies. Also takes the README's chart screenshots, light and dark."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db.models import F
from django.test import Client

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, logs_append, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STEPS = 3000
LR = 0.003
LONG_NAME = "mlp-wide-cosine-warmup-label-smoothing-0.1-mixup-0.2-long-schedule"
RUNS = (("mlp-baseline", 0.0, 1.0), (LONG_NAME, 0.1, 0.8), ("mlp-dropout-0.3", 0.3, 0.9))
LAST_EPOCH = (STEPS - 100) // 250  # the epoch counter is logged every 100 steps


def training_curves(dropout: float, speed: float, seed: int) -> list[MetricPoint]:
    """Real-looking curves: a noisy falling loss every step; accuracy, epoch and a constant lr every 100."""
    rng = random.Random(seed)
    points, t0 = [], 1.7e9
    for step in range(STEPS):
        loss = 0.25 + dropout * 0.3 + 2.1 * math.exp(-step * speed / 600) + rng.gauss(0, 0.06)
        points.append(MetricPoint("loss", step, loss, t0 + step * 0.1))
        if step % 100 == 0:
            accuracy = 0.93 - dropout * 0.08 - 0.8 * math.exp(-step * speed / 700) + rng.gauss(0, 0.008)
            points += [MetricPoint("val_accuracy", step, accuracy, t0 + step * 0.1),
                       MetricPoint("epoch", step, float(step // 250), t0 + step * 0.1),
                       MetricPoint("lr", step, LR, t0 + step * 0.1)]
    return points


def train(run, dropout: float, speed: float, seed: int) -> None:
    """Take a run through its life as a worker would: placed, started, its curves and log lines, done."""
    run_transition(run_id=run.id, from_states=("queued",), to_state="scheduled", reason="placed", new_attempt=True)
    run_transition(run_id=run.id, from_states=("scheduled",), to_state="running", reason="started")
    points = training_curves(dropout, speed, seed)
    metrics_log(run_id=run.id, points=points)
    losses = {p.step: p.value for p in points if p.key == "loss"}
    logs_append(run_id=run.id, lines=[(i, "stdout", f"epoch {epoch}: loss {losses[epoch * 250]:.4f}")
                                      for i, epoch in enumerate(range(LAST_EPOCH + 1))])
    run_transition(run_id=run.id, from_states=("running",), to_state="succeeded", reason="done")
    Run.objects.filter(id=run.id).update(started_at=F("finished_at") - timedelta(minutes=24, seconds=10 * seed))


@pytest.fixture
def world(live_server):
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user(username="carla", password="browser-test-pw")
    project = Project.objects.create(slug="digits", name="Digits", owner_user=owner)
    runs = []
    for seed, (name, dropout, speed) in enumerate(RUNS):
        spec = {"name": name, "recipe": {"model": "mlp", "epochs": 12, "optimizer": {"lr": LR}, "dropout": dropout}}
        run = run_submit(user=owner, project=project, spec=spec).runs[0]
        train(run, dropout, speed, seed)
        runs.append(run)
    client = Client()
    client.force_login(owner)
    return {"cookie": client.cookies[settings.SESSION_COOKIE_NAME].value, "project": project, "runs": runs,
            "compare": f"/p/{project.id}/compare/?runs={','.join(str(run.id) for run in runs)}"}


@pytest.fixture
def open_page(browser, live_server, world):
    contexts, errors = [], []

    def open_(path: str, color_scheme: str = "light"):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": world["cookie"], "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(live_server.url + path)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def charts_ready(page):
    page.wait_for_selector("body[data-charts-ready='1']", timeout=20_000)
    return page


def chart(page, key: str):
    return page.locator(f".plot[data-key='{key}']")


def run_page(open_page, run, color_scheme: str = "light"):
    page = open_page(f"/runs/{run.id}/", color_scheme)
    page.wait_for_selector("#charts .chart[data-metric-key='lr'] .main-svg", timeout=20_000)
    return page


def test_a_constant_series_gets_a_range_around_its_value(open_page, world):
    page = charts_ready(open_page(world["compare"]))
    low, high = chart(page, "lr").evaluate("div => div._fullLayout.yaxis.range")
    assert 0 < low < LR < high < 2 * LR  # Plotly's own autorange is 0.003 ± 1, which reads as 0
    low, high = chart(page, "loss").evaluate("div => div._fullLayout.yaxis.range")
    assert low < 0.5 and high > 2  # a varying series keeps Plotly's autorange

    page = run_page(open_page, world["runs"][0])
    low, high = page.locator("#charts .chart[data-metric-key='lr']").evaluate("div => div._fullLayout.yaxis.range")
    assert 0 < low < LR < high < 2 * LR


def wandb_twema(xs: list[float], ys: list[float], param: float, x_range: float) -> list[float]:
    """W&B's documented time-weighted EMA with its de-bias term (the weight per 1/1000 of the chart's x range)."""
    weight, out, total, norm = min(math.sqrt(param), 0.999), [], 0.0, 0.0
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        decay = weight ** ((x - xs[max(i - 1, 0)]) / x_range * 1000)
        total, norm = total * decay + y, norm * decay + 1
        out.append(total / norm)
    return out


def smoothed_and_raw(page, key: str, run) -> tuple[dict, dict]:
    return chart(page, key).evaluate(f"""div => div.data.filter(t => t.legendgroup === 'run-{run.id}')
        .map(t => ({{uid: t.uid, opacity: t.opacity, colour: t.line.color, legend: t.showlegend, x: t.x, y: t.y}}))""")


def test_smoothing_draws_over_the_faded_raw_curve_and_follows_x_spacing(open_page, world):
    page = charts_ready(open_page(world["compare"] + "&smooth=0.9"))
    run = world["runs"][0]
    raw, smoothed = smoothed_and_raw(page, "loss", run)  # the raw curve first, so the smoothed one is drawn over it
    assert (raw["uid"], smoothed["uid"]) == (f"raw-{run.id}", f"run-{run.id}")
    assert raw["opacity"] <= 0.3 and smoothed["opacity"] == 1 and raw["colour"] == smoothed["colour"]
    assert raw["legend"] is False
    tail, raw_tail = smoothed["y"][-200:], raw["y"][-200:]
    assert max(tail) - min(tail) < (max(raw_tail) - min(raw_tail)) / 2  # the noise is smoothed away...
    # ... by W&B's rule (every run logs the same steps, so one run's x range is the chart's)
    assert smoothed["y"] == pytest.approx(wandb_twema(raw["x"], raw["y"], 0.9, STEPS - 1), rel=1e-9)
    raw_acc, smoothed_acc = smoothed_and_raw(page, "val_accuracy", run)  # sparse and noisy: smoothed by the same rule
    assert smoothed_acc["y"] == pytest.approx(wandb_twema(raw_acc["x"], raw_acc["y"], 0.9, STEPS - 100), rel=1e-9)
    assert smoothed_acc["y"] != raw_acc["y"]

    # an epoch counter has no noise to smooth: any average only lags (W&B's rule ends this one at 10.97), so it is
    # drawn as logged and ends at its last value, at heavy smoothing too
    _, epoch = smoothed_and_raw(page, "epoch", run)
    assert epoch["y"][-1] == LAST_EPOCH and epoch["y"] == [float(step // 250) for step in range(0, STEPS, 100)]
    low, high = chart(page, "lr").evaluate("div => div._fullLayout.yaxis.range")  # a constant stays readable
    assert 0 < low < LR < high < 2 * LR
    page.locator("#smoothing").fill("0.99")
    page.wait_for_function("() => new URL(location.href).searchParams.get('smooth') === '0.99'")
    assert smoothed_and_raw(page, "epoch", run)[1]["y"][-1] == LAST_EPOCH
    raw, smoothed = smoothed_and_raw(page, "loss", run)
    assert smoothed["y"] == pytest.approx(wandb_twema(raw["x"], raw["y"], 0.99, STEPS - 1), rel=1e-9)

    # the run page smooths by the same rule (over the points it shows, its own x range)
    page_run = run_page(open_page, run)
    page_run.locator("#smoothing").fill("0.9")
    for key in ("epoch", "loss"):
        page_run.wait_for_function(f"() => document.querySelector(\"#charts .chart[data-metric-key='{key}']\").data.length === 2")
    epoch = page_run.locator("#charts .chart[data-metric-key='epoch']")
    assert epoch.evaluate("div => div.data.map(t => [t.uid, t.opacity])") == [["raw", 0.25], ["smoothed", None]]
    assert epoch.evaluate("div => div.data[1].y.slice(-1)[0]") == LAST_EPOCH
    raw, smoothed = page_run.locator("#charts .chart[data-metric-key='loss']").evaluate("div => div.data.map(t => t.y)")
    xs = page_run.locator("#charts .chart[data-metric-key='loss']").evaluate("div => div.data[0].x")
    assert smoothed == pytest.approx(wandb_twema(xs, raw, 0.9, xs[-1] - xs[0]), rel=1e-9) and smoothed != raw

    # one legend for the view, one entry per run, and none inside the charts
    assert page.locator("#chart-legend .legend-entry").count() == len(world["runs"])
    assert chart(page, "loss").evaluate("div => div._fullLayout.showlegend") is False
    page.locator(f"#chart-legend [data-legendgroup='run-{run.id}']").click()
    for key in ("loss", "epoch"):
        page.wait_for_function(f"""() => document.querySelector(".plot[data-key='{key}']").data
            .filter(t => t.legendgroup === 'run-{run.id}').every(t => t.visible === false)""")


def test_runs_hidden_in_the_legend_stay_hidden_after_a_reload_and_in_a_copied_link(open_page, world):
    page = charts_ready(open_page(world["compare"]))
    run = world["runs"][1]
    entry = page.locator(f"#chart-legend [data-legendgroup='run-{run.id}']")
    entry.click()
    page.wait_for_function(f"() => new URL(location.href).searchParams.getAll('hide').includes('run-{run.id}')")
    link = page.url

    def hidden_everywhere(page) -> bool:
        return page.evaluate(f"""() => Array.from(document.querySelectorAll(".plot[data-key]")).every(div => div.data
            .filter(t => t.legendgroup === 'run-{run.id}').every(t => t.visible === false))""")

    page.reload()
    charts_ready(page)
    assert entry.get_attribute("aria-pressed") == "false" and hidden_everywhere(page)
    others = [r for r in world["runs"] if r.id != run.id]
    assert all(page.locator(f"#chart-legend [data-legendgroup='run-{r.id}']").get_attribute("aria-pressed") == "true"
               for r in others)
    parts = urlsplit(link)
    shared = charts_ready(open_page(f"{parts.path}?{parts.query}"))  # the copied link, opened afresh
    assert hidden_everywhere(shared)
    shared.locator(f"#chart-legend [data-legendgroup='run-{run.id}']").click()  # shown again: gone from the URL
    shared.wait_for_function("() => !new URL(location.href).searchParams.has('hide')")


def test_a_run_keeps_its_colour_across_charts_and_pages(open_page, world):
    runs = world["runs"]
    page = charts_ready(open_page(world["compare"]))
    colours = {key: chart(page, key).evaluate("div => Object.fromEntries(div.data.map(t => [t.uid, t.line.color]))")
               for key in ("loss", "lr", "epoch")}
    assert colours["loss"] == colours["lr"] == colours["epoch"]
    legend = page.locator("#chart-legend .legend-entry .swatch").evaluate_all("els => els.map(e => e.style.background)")
    assert len(set(legend)) == len(runs)
    # grouped, the one legend lists the groups, in the colours of their bands
    page.select_option("#group-by", "dropout")
    page.wait_for_selector("#chart-legend .legend-entry[data-legendgroup='group-0.3']")
    assert page.locator("#chart-legend .legend-entry").all_inner_texts() == ["dropout=0 (1)", "dropout=0.1 (1)", "dropout=0.3 (1)"]
    assert chart(page, "loss").evaluate("div => div.data.filter(t => t.legendgroup === 'group-0.3' && t.fill === undefined).length") == 2

    # the same run compared with another set of runs, in another order, keeps its colour
    page = charts_ready(open_page(f"/p/{world['project'].id}/compare/?runs={runs[2].id},{runs[1].id}"))
    again = chart(page, "loss").evaluate("div => Object.fromEntries(div.data.map(t => [t.uid, t.line.color]))")
    assert again == {f"run-{runs[2].id}": colours["loss"][f"run-{runs[2].id}"], f"run-{runs[1].id}": colours["loss"][f"run-{runs[1].id}"]}

    # and on its own run page
    page = run_page(open_page, runs[1])
    assert page.locator("#charts .chart[data-metric-key='loss']").evaluate("div => div.data[0].line.color") == colours["loss"][f"run-{runs[1].id}"]


def test_long_names_are_cut_short_and_tables_do_not_wrap_words(open_page, world):
    page = charts_ready(open_page(world["compare"]))
    label = f"#{world['runs'][1].number} {LONG_NAME}"
    ellipsised = "el => ({title: el.title || el.closest('[title]').title, cut: el.scrollWidth > el.clientWidth})"
    for selector in ("#chart-legend .legend-entry .truncate", "#summary-table tbody .truncate", "#config-diff thead .truncate"):
        cut = page.locator(selector, has_text=LONG_NAME).evaluate(ellipsised)
        assert cut == {"title": label, "cut": True}, selector
    # every header and name in the summary and config-diff tables sits on one line
    lines = """table => Array.from(table.querySelectorAll('th, td')).filter(cell => cell.textContent.trim()).map(cell => {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), tops = new Set();
        for (let text = walker.nextNode(); text; text = walker.nextNode()) {
          const range = document.createRange(); range.selectNodeContents(text);
          for (const rect of range.getClientRects()) if (rect.width) tops.add(Math.round(rect.top));
        }
        return [cell.textContent.trim(), tops.size];
      }).filter(([, n]) => n > 1)"""
    page.check("#diff-all")
    assert page.locator("#summary-table").evaluate(lines) == []
    assert page.locator("#config-diff").evaluate(lines) == []


def test_the_scatter_opens_on_a_param_that_varies(open_page, world):
    page = charts_ready(open_page(world["compare"]))
    assert page.locator("#scatter-x").input_value() == "dropout"
    page.get_by_text("Param vs metric", exact=True).click()
    page.wait_for_selector("#scatter .main-svg", timeout=10_000)
    xs = page.locator("#scatter").evaluate("div => div.data[0].x")
    assert sorted(xs) == [0.0, 0.1, 0.3]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_readme_screenshots_of_the_charts(open_page, world, screenshot, theme):
    suffix = "" if theme == "light" else "_dark"
    page = charts_ready(open_page(world["compare"] + "&smooth=0.6&best=val_accuracy&mode=max", theme))
    assert page.evaluate("document.documentElement.dataset.theme") == theme
    screenshot(page, "compare" + suffix)
    page.get_by_text("Parallel coordinates", exact=True).click()
    page.wait_for_selector("#parcoords .parcoords", timeout=10_000)
    page.locator("#parcoords-section").scroll_into_view_if_needed()
    screenshot(page, "parallel_coordinates" + suffix)
    page = run_page(open_page, world["runs"][0], theme)
    screenshot(page, "run" + suffix)
    sweep = sweep_of_runs(world)
    page = charts_ready(open_page(f"/p/{world['project'].id}/sweeps/{sweep.id}/", theme))
    assert page.locator("#parcoords .parcoords").count() == 1
    screenshot(page, "sweep" + suffix)
    page = open_page(f"/p/{world['project'].id}/", theme)
    page.wait_for_selector("table.runs")
    screenshot(page, "project" + suffix)


def sweep_of_runs(world):
    """A finished 2 x 3 sweep over lr and dropout, each run with real-looking curves."""
    spec = {"name": "mlp-sweep", "recipe": {"model": "mlp", "epochs": 12},
            "sweep": {"metric": {"name": "val_accuracy", "goal": "maximize"},
                      "parameters": {"optimizer.lr": {"values": [0.01, 0.003]}, "dropout": {"values": [0.0, 0.1, 0.3]}}}}
    submitted = run_submit(user=world["project"].owner_user, project=world["project"], spec=spec)
    for seed, run in enumerate(submitted.runs):
        speed = 1.2 if run.params["optimizer.lr"] == 0.01 else 0.8
        train(run, run.params["dropout"], speed, 10 + seed)
    assert submitted.sweep is not None
    return submitted.sweep
