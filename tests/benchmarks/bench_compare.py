"""Compare of 100 runs x 100,000 points of one metric: server time, payload, and time to draw in Chromium.

Run: `python tests/benchmarks/bench_compare.py` (or `make bench`). Prints one JSON object.
With DATABASE_URL on PostgreSQL it creates (and drops) a temporary database next to it; otherwise
it uses SQLite in a temporary folder. Points go in through `metrics_log` (batches of 10,000), as a
run's do. Targets: <= 1 s server time and <= 3 MB for the data endpoint, <= 2 s from navigation
until the chart is drawn.

Server time is the median of warm requests. Cold looks are reported beside it: with the cache
emptied and a new database connection (its first response and the sum of the requests the page
makes until every run is in), and right after one more point was logged to every run (as when
the runs are live, every series has changed since the last look).
Draw time is from navigation (in the same tab, from another page of the site, plotly.js cached)
until the chart is drawn; the very first visit, which also loads plotly.js, is reported beside it,
and so is a first visit with an empty cache that comes from the project page (which prefetches plotly.js).
BENCH_RUNS and BENCH_POINTS shrink the world for a quick look.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_db import use_scratch_database

RUNS = int(os.environ.get("BENCH_RUNS", "100"))
POINTS = int(os.environ.get("BENCH_POINTS", "100000"))
REPEATS = 5
TARGET_SERVER_MS = 1000.0
TARGET_PAYLOAD_BYTES = 3_000_000
TARGET_DRAW_MS = 2000.0
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

DATA_DIR = tempfile.mkdtemp(prefix="kiln-bench-compare-")
os.environ["KILN_DATA_DIR"] = DATA_DIR
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
drop_database = use_scratch_database(DATA_DIR)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from webapp.bootstrap import prepare_data_dirs  # noqa: E402
from webapp.dashboards.series import _cache_name, series_refs  # noqa: E402
from webapp.experiments.assets import PLOTLY_VERSION  # noqa: E402
from webapp.experiments.models import Run, RunState  # noqa: E402
from webapp.experiments.results import MetricPoint, metrics_log  # noqa: E402
from webapp.experiments.submit import run_submit  # noqa: E402
from webapp.projects.models import Project  # noqa: E402


def curve(index: int, lr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(index)
    steps = np.arange(POINTS, dtype=np.int64)
    values = 2.5 * np.exp(-steps * lr / 200.0) + 0.05 + rng.normal(0.0, 0.02, POINTS)
    values[rng.integers(0, POINTS, 5)] += 3.0  # a few loss spikes the chart must keep
    walls = 1.7e9 + index * 10.0 + steps * 0.05
    return steps, values, walls


def build_world() -> tuple[Project, list[Run]]:
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user(username="bench", password="bench-pw-123")
    project = Project.objects.create(slug="bench", name="Bench", owner_user=owner)
    spec = {"name": "bench", "recipe": {"model": "mlp"}, "sweep": {"method": "random", "max_runs": RUNS, "parameters": {
        "optimizer.lr": {"min": 1e-3, "max": 1e-1, "distribution": "log_uniform"}}}}
    runs = run_submit(user=owner, project=project, spec=spec).runs
    for index, run in enumerate(runs):
        steps, values, walls = curve(index, run.params["optimizer.lr"])
        points = [MetricPoint("loss", s, v, w) for s, v, w in zip(steps.tolist(), values.tolist(), walls.tolist(), strict=True)]
        for start in range(0, POINTS, 10_000):
            metrics_log(run_id=run.id, points=points[start : start + 10_000])
    Run.objects.filter(project=project).update(state=RunState.SUCCEEDED, finished_at=timezone.now())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE experiments_metric")
    return project, list(Run.objects.filter(project=project).order_by("number"))


def timed_get(client: Client, url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, response.content[:300]
    return elapsed, response.content


def serve() -> tuple[str, object]:
    from django.core.servers.basehttp import (
        ThreadedWSGIServer,
        WSGIRequestHandler,
        get_internal_wsgi_application,
    )

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedWSGIServer(("127.0.0.1", port), Quiet)
    server.set_app(get_internal_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def draw_ms(base: str, path: str, session: str, plotly_src: str, project_path: str) -> tuple[list[float], dict]:
    from playwright.sync_api import sync_playwright
    from services import chromium_path

    samples, facts = [], {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base}])
        page = context.new_page()
        for attempt in range(REPEATS):
            page.goto(base + "/healthz")  # as a user arrives from another page of the site, in the same tab
            page.goto(base + path)
            page.wait_for_selector("body[data-charts-ready='1']", timeout=60_000)
            result = page.evaluate("""() => ({
                drawnAt: window.kilnCompare.drawnAt,
                timings: window.kilnCompare.timings,
                traces: document.querySelector(".plot[data-key='loss']").data.length,
                points: document.querySelector(".plot[data-key='loss']").data.reduce((n, t) => n + t.x.length, 0),
                status: document.getElementById("status").textContent,
            })""")
            if attempt:  # the first visit also fills the browser's cache of plotly.js
                samples.append(result["drawnAt"])
            else:
                facts["first_visit_ms"] = round(result["drawnAt"], 1)
            facts.update(traces=result["traces"], points_drawn=result["points"], status=result["status"])
            facts["last_visit_ms"] = {  # where the time went: data in hand, plotly.js ready, chart drawn
                "data": round(result["timings"]["data"]), "plotly_ready": round(result["timings"]["plotly"]),
                "drawn": round(result["drawnAt"]),
            }
        page.close()
        # A first visit as users make it: an empty browser cache, the project page first (it prefetches plotly.js).
        fresh = browser.new_context(viewport={"width": 1280, "height": 900})
        fresh.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base}])
        page = fresh.new_page()
        page.goto(base + project_path, wait_until="networkidle")
        page.goto(base + path)
        page.wait_for_selector("body[data-charts-ready='1']", timeout=60_000)
        facts["first_visit_from_the_project_page_ms"] = round(page.evaluate("() => window.kilnCompare.drawnAt"), 1)
        fresh.close()
        # The floor under any chart on this machine: a document holding nothing but plotly.js (from the warm cache).
        page = context.new_page()
        page.goto(base + "/healthz")
        floor = []
        for _ in range(REPEATS - 1):
            start = page.evaluate("() => performance.now()")
            page.set_content(f'<!doctype html><script src="{plotly_src}"></script>', wait_until="domcontentloaded")
            floor.append(page.evaluate("() => performance.now()") - start)
        facts["plotly_js_alone_ms"] = round(statistics.median(floor), 1)
        context.close()
        browser.close()
    return samples, facts


def main() -> None:
    prepare_data_dirs()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    project, runs = build_world()
    load_s = time.perf_counter() - started
    refs = series_refs([run.id for run in runs], ["loss"])
    cache.delete_many([_cache_name(ref) for ref in refs])
    connection.close()  # the cold look also opens its database connection

    client = Client()
    client.force_login(project.owner_user)
    run_ids = ",".join(str(run.id) for run in runs)
    url = f"/p/{project.id}/compare/data/?runs={run_ids}&key=loss&x=step"
    cold_ms, content = timed_get(client, url)
    cold_total, cold_requests, pending = cold_ms, 1, json.loads(content)["pending"]
    while pending:  # the first look at long runs comes in parts, as the page asks for them
        ms, content = timed_get(client, f"/p/{project.id}/compare/data/?runs={','.join(map(str, pending))}&key=loss")
        cold_total, cold_requests, pending = cold_total + ms, cold_requests + 1, json.loads(content)["pending"]
    warm = [timed_get(client, url) for _ in range(REPEATS)]
    server_ms = statistics.median(ms for ms, _ in warm)
    payload = warm[0][1]
    body = json.loads(payload)
    zoom_ms, zoom_payload = timed_get(client, url + "&lo=40000&hi=40999")
    wide_zoom_ms, wide_zoom_payload = timed_get(client, url + f"&lo={POINTS // 10 + 1}&hi={POINTS * 9 // 10 - 1}")

    base, server = serve()
    try:
        samples, facts = draw_ms(
            base, f"/p/{project.id}/compare/?runs={run_ids}&key=loss", client.cookies[settings.SESSION_COOKIE_NAME].value,
            base + reverse("plotly_js", args=[PLOTLY_VERSION]), f"/p/{project.id}/",
        )
    finally:
        server.shutdown()  # type: ignore[attr-defined]
    draw = statistics.median(samples)
    for run in runs:  # live runs: every series changed since the last look
        metrics_log(run_id=run.id, points=[MetricPoint("loss", POINTS, 0.5, time.time())])
    live_ms, _ = timed_get(client, url)
    cache.delete_many([_cache_name(ref) for ref in series_refs([run.id for run in runs], ["loss"])])
    print(json.dumps({
        "benchmark": "compare",
        "load_average_1min": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "database": connection.vendor,
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "runs": RUNS,
        "points_per_run": POINTS,
        "metric_rows": RUNS * POINTS,
        "load_seconds": round(load_s, 1),
        "server_ms": {"median": round(server_ms, 1), "target": TARGET_SERVER_MS, "ratio_to_target": round(server_ms / TARGET_SERVER_MS, 3),
                      "cold_first_response": round(cold_ms, 1), "cold_all_series": round(cold_total, 1),
                      "cold_requests": cold_requests, "after_a_new_point_per_run": round(live_ms, 1),
                      "zoom_1000_steps": round(zoom_ms, 1), "zoom_80_percent": round(wide_zoom_ms, 1)},
        "payload_bytes": {"value": len(payload), "target": TARGET_PAYLOAD_BYTES, "ratio_to_target": round(len(payload) / TARGET_PAYLOAD_BYTES, 3),
                          "points": sum(len(s["step"]) for s in body["series"]), "zoom": len(zoom_payload),
                          "zoom_80_percent": len(wide_zoom_payload)},
        "draw_ms": {"median": round(draw, 1), "target": TARGET_DRAW_MS, "ratio_to_target": round(draw / TARGET_DRAW_MS, 3),
                    "samples": [round(s, 1) for s in samples], **facts},
    }))


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_database()
        shutil.rmtree(DATA_DIR, ignore_errors=True)
