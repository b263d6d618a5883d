"""Compare of 100 runs x 4 metrics (100,000 points of `loss`, 10,000 of 3 others): server time, bytes, time to draw.

Run: `python tests/benchmarks/bench_compare.py` (or `make bench`). Prints one JSON object.
With DATABASE_URL on PostgreSQL it creates (and drops) a temporary database next to it; otherwise
it uses SQLite in a temporary folder. Points go in through `metrics_log` (batches of 10,000), as a
run's do. Targets: <= 1 s cold (after a web restart) and <= 0.3 s warm server time, <= 3 MB on the
wire, <= 2 s from navigation until the charts are drawn (warm browser cache), <= 3 s cold.

The view's series come in ONE request (every key). Measured twice: in this process (server time
alone; cold = cache emptied and a new database connection) and from outside, over HTTP against
`kiln web` in production mode (gunicorn, whitenoise's manifest, gzip), right after it started
(cold: nothing cached for the view, on the server or in the shared cache) and then warm (the answer
kept by `webapp.projects.runs_cache` until a run changes; `after_a_new_point_per_run` is the view rebuilt
after a change). Draw time is from navigation (in the same tab, from another page of the site,
plotly.js cached) until every chart is drawn in headless Chromium, against that server; the very first
visit (which also loads plotly.js) and a first visit with an empty cache coming from the project page are
reported beside it.
Peer: a real MLflow server (`make mlflow-server`, SQLite) holding the very points the view draws,
read as MLflow's UI reads them, with one `get-history` request per (run, key), in the same run.
BENCH_RUNS and BENCH_POINTS shrink the world for a quick look; BENCH_MLFLOW=0 skips the peer.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_db import use_scratch_database

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("BENCH_RUNS", "100"))
POINTS = int(os.environ.get("BENCH_POINTS", "100000"))  # of `loss`; the other keys hold a tenth of that
KEYS = ("loss", "accuracy", "val_loss", "lr")
WITH_MLFLOW = os.environ.get("BENCH_MLFLOW", "1") != "0"
REPEATS = 5
TARGET_COLD_MS = 1000.0
TARGET_WARM_MS = 300.0
TARGET_PAYLOAD_BYTES = 3_000_000
TARGET_DRAW_MS = 2000.0
TARGET_COLD_DRAW_MS = 3000.0
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
from django.db.models import F  # noqa: E402
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


def points_of(key: str) -> int:
    return POINTS if key == "loss" else max(POINTS // 10, 1)


def curve(index: int, lr: float, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = points_of(key)
    rng = np.random.default_rng([index, KEYS.index(key)])
    steps = np.arange(count, dtype=np.int64) * (POINTS // count)  # the other keys every 10th step, as evaluations
    values = 2.5 * np.exp(-steps * lr / 200.0) + 0.05 + rng.normal(0.0, 0.02, count)
    values[rng.integers(0, count, 5)] += 3.0  # a few spikes the chart must keep
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
        for key in KEYS:
            steps, values, walls = curve(index, run.params["optimizer.lr"], key)
            points = [MetricPoint(key, s, v, w) for s, v, w in zip(steps.tolist(), values.tolist(), walls.tolist(), strict=True)]
            for start in range(0, len(points), 10_000):
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def production_env() -> dict[str, str]:
    """This process's database and data folder, in production mode, signing with this process's key (its sessions hold)."""
    return {**os.environ, "KILN_MODE": "production", "SECRET_KEY": settings.SECRET_KEY, "KILN_ALLOWED_HOSTS": "127.0.0.1",
            "KILN_DEMO": "false", "KILN_STATIC_ROOT": str(Path(DATA_DIR) / "static")}


def kiln_web() -> tuple[str, subprocess.Popen]:
    """`kiln web` as the README's production steps run it (after `kiln setup`, which collects the static files)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "webapp.client.cli", "web", "--bind", f"127.0.0.1:{port}"], cwd=ROOT,
                              env=production_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    if not wait_for(base + "/healthz", server, 60):
        server.kill()
        raise SystemExit("kiln web did not start")
    return base, server


def http_get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[float, int, bytes]:
    """(ms until the whole body is in, bytes on the wire, the decoded body) over a kept-alive connection."""
    start = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "gzip", **headers})
    response = conn.getresponse()
    wire = response.read()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status == 200, (response.status, wire[:300])
    body = gzip.decompress(wire) if response.getheader("Content-Encoding") == "gzip" else wire
    return elapsed, len(wire), body


def serve_mlflow(folder: Path) -> tuple[str | None, subprocess.Popen | None, str]:
    from services import mlflow_server_binary

    binary = mlflow_server_binary()
    if binary is None:
        return None, None, "the test-only MLflow server is not installed (make mlflow-server)"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "DATABASE_URL"))}
    process = subprocess.Popen(
        [str(binary), "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--artifacts-destination",
         str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if wait_for(f"{url}/health", process, 240):
        return url, process, ""
    return None, process, "the MLflow server did not start"


def mlflow_peer(series: list[dict]) -> dict[str, Any]:
    """The points the view draws, stored in a real MLflow server and read back with one get-history per (run, key)."""
    import itertools

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="kiln-bench-mlflow-"))
    url, process, why = serve_mlflow(folder)
    try:
        if url is None:
            return {"skipped": why}
        client = MlflowClient(url)
        experiment = client.create_experiment("compare")
        run_ids: dict[int, str] = {}
        for item in series:
            if item["run"] not in run_ids:
                run_ids[item["run"]] = client.create_run(experiment).info.run_id
            steps = list(itertools.accumulate(item["dstep"]))
            metrics = [Metric(item["key"], float(v if v is not None else "nan"), 1_700_000_000_000 + s, s)
                       for s, v in zip(steps, item["y"], strict=True)]
            for start in range(0, len(metrics), 1000):
                client.log_batch(run_ids[item["run"]], metrics=metrics[start : start + 1000])
        host, port = url.removeprefix("http://").split(":")
        passes = []
        for _ in range(2):  # the first pass is the cold one
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            total_ms, wire, points = 0.0, 0, 0
            for item in series:
                ms, size, body = http_get(conn, f"/api/2.0/mlflow/metrics/get-history?run_id={run_ids[item['run']]}"
                                                f"&metric_key={item['key']}", {})
                total_ms, wire, points = total_ms + ms, wire + size, points + len(json.loads(body).get("metrics", []))
            conn.close()
            passes.append((total_ms, wire, points))
        return {"requests": len(series), "cold_ms": round(passes[0][0], 1), "warm_ms": round(passes[1][0], 1),
                "wire_bytes": passes[1][1], "points": passes[1][2]}
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def draw_ms(base: str, path: str, session: str, plotly_src: str, project_path: str) -> tuple[list[float], dict]:
    """Milliseconds from navigation until every chart is drawn, on warm visits; facts about the rest."""
    from playwright.sync_api import sync_playwright
    from services import chromium_path

    samples, facts = [], {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base}])
        page = context.new_page()
        data_requests: list[str] = []
        page.on("request", lambda request: data_requests.append(request.url) if "/compare/data/" in request.url else None)
        for attempt in range(REPEATS):
            data_requests.clear()
            page.goto(base + "/healthz")  # as a user arrives from another page of the site, in the same tab
            page.goto(base + path)
            page.wait_for_selector("body[data-charts-ready='1']", timeout=60_000)
            result = page.evaluate("""() => ({
                drawnAt: window.kilnCompare.drawnAt,
                timings: window.kilnCompare.timings,
                charts: document.querySelectorAll(".plot[data-key]").length,
                traces: Array.from(document.querySelectorAll(".plot[data-key]")).reduce((n, div) => n + (div.data || []).length, 0),
                types: Array.from(new Set(Array.from(document.querySelectorAll(".plot[data-key]")).flatMap((div) => (div.data || []).map((t) => t.type)))),
                points: Array.from(document.querySelectorAll(".plot[data-key]")).reduce((n, div) => n + (div.data || []).reduce((m, t) => m + t.x.length, 0), 0),
                status: document.getElementById("status").textContent,
            })""")
            if attempt:  # the first visit also fills the browser's cache of plotly.js
                samples.append(result["drawnAt"])
            else:
                facts["first_visit_ms"] = round(result["drawnAt"], 1)
            facts.update(charts=result["charts"], traces=result["traces"], trace_types=result["types"],
                         points_drawn=result["points"], status=result["status"], data_requests=len(data_requests))
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
    refs = series_refs([run.id for run in runs], KEYS)
    cache.delete_many([_cache_name(ref) for ref in refs])
    connection.close()  # the cold look also opens its database connection

    client = Client()
    client.force_login(project.owner_user)
    run_ids = ",".join(str(run.id) for run in runs)
    keys = "".join(f"&key={key}" for key in KEYS)
    url = f"/p/{project.id}/compare/data/?runs={run_ids}{keys}&x=step"
    cold_ms, content = timed_get(client, url)
    cold_total, cold_requests, pending = cold_ms, 1, json.loads(content)["pending"]
    while pending:  # the first look at long runs comes in parts, as the page asks for them
        ms, content = timed_get(client, f"/p/{project.id}/compare/data/?runs={','.join(map(str, pending))}{keys}")
        cold_total, cold_requests, pending = cold_total + ms, cold_requests + 1, json.loads(content)["pending"]
    warm = [timed_get(client, url) for _ in range(REPEATS)]
    server_ms = statistics.median(ms for ms, _ in warm)
    body = json.loads(warm[0][1])
    zoom_url = f"/p/{project.id}/compare/data/?runs={run_ids}&key=loss&x=step"  # a zoom asks for its one chart
    zoom_ms, zoom_payload = timed_get(client, zoom_url + "&lo=40000&hi=40999")
    wide_zoom_ms, wide_zoom_payload = timed_get(client, zoom_url + f"&lo={POINTS // 10 + 1}&hi={POINTS * 9 // 10 - 1}")
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    connection.close()

    # From outside: `kiln setup` then `kiln web` in production mode, as the README's production steps run them.
    subprocess.run([sys.executable, "-m", "webapp.client.cli", "setup"], env=production_env(), cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    # nothing kept for the view either: the answer the in-process looks left in the shared cache is orphaned
    Project.objects.filter(id=project.id).update(runs_version=F("runs_version") + 1)
    base, server = kiln_web()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=60)
        cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
        web_cold_ms, _, _ = http_get(conn, url, cookie)  # the first request after a restart
        for _ in range(2):  # each gunicorn worker's first request
            http_get(conn, url, cookie)
        web_warm = [http_get(conn, url, cookie) for _ in range(REPEATS)]
        conn.close()
        samples, facts = draw_ms(
            base, f"/p/{project.id}/compare/?runs={run_ids}{keys}", session,
            base + reverse("plotly_js", args=[PLOTLY_VERSION]), f"/p/{project.id}/",
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    web_warm_ms = statistics.median(ms for ms, _, _ in web_warm)
    wire_bytes, raw_bytes = web_warm[0][1], len(web_warm[0][2])
    draw = statistics.median(samples)
    peer: dict[str, Any] = mlflow_peer(body["series"]) if WITH_MLFLOW else {"skipped": "BENCH_MLFLOW=0"}
    for run in runs:  # live runs: every series changed since the last look
        metrics_log(run_id=run.id, points=[MetricPoint("loss", POINTS, 0.5, time.time())])
    live_ms, _ = timed_get(client, url)
    cache.delete_many([_cache_name(ref) for ref in series_refs([run.id for run in runs], KEYS)])
    result = {
        "benchmark": "compare",
        "load_average_1min": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
        "database": connection.vendor,
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "runs": RUNS,
        "keys": {key: points_of(key) for key in KEYS},
        "metric_rows": RUNS * sum(points_of(key) for key in KEYS),
        "load_seconds": round(load_s, 1),
        "server_ms": {
            "kiln_web_cold_after_restart": round(web_cold_ms, 1), "target_cold": TARGET_COLD_MS,
            "ratio_cold_to_target": round(web_cold_ms / TARGET_COLD_MS, 3),
            "kiln_web_warm_median": round(web_warm_ms, 1), "target_warm": TARGET_WARM_MS,
            "ratio_warm_to_target": round(web_warm_ms / TARGET_WARM_MS, 3),
            "in_process_warm_median": round(server_ms, 1), "in_process_cold_first_response": round(cold_ms, 1),
            "in_process_cold_all_series": round(cold_total, 1), "cold_requests": cold_requests,
            "after_a_new_point_per_run": round(live_ms, 1), "zoom_1000_steps": round(zoom_ms, 1),
            "zoom_80_percent": round(wide_zoom_ms, 1),
        },
        "wire_bytes": {"gzip": wire_bytes, "uncompressed": raw_bytes, "target": TARGET_PAYLOAD_BYTES,
                       "ratio_to_target": round(wire_bytes / TARGET_PAYLOAD_BYTES, 3), "series": len(body["series"]),
                       "points": sum(len(item["dstep"]) for item in body["series"]), "zoom": len(zoom_payload),
                       "zoom_80_percent": len(wide_zoom_payload)},
        "draw_ms": {"median": round(draw, 1), "target": TARGET_DRAW_MS, "ratio_to_target": round(draw / TARGET_DRAW_MS, 3),
                    "target_cold": TARGET_COLD_DRAW_MS, "samples": [round(sample, 1) for sample in samples], **facts},
        "mlflow_get_history": peer,
    }
    if "warm_ms" in peer:
        result["ratio_kiln_to_mlflow"] = {"warm_ms": round(web_warm_ms / peer["warm_ms"], 3),
                                          "cold_ms": round(web_cold_ms / peer["cold_ms"], 3),
                                          "wire_bytes": round(wire_bytes / peer["wire_bytes"], 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_database()
        shutil.rmtree(DATA_DIR, ignore_errors=True)
