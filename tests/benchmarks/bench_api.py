"""API run-list throughput: requests per second against a real gunicorn, with token auth.

Run: `python tests/benchmarks/bench_api.py` (or `make bench`). Prints one JSON object.
Serves a project of RUNS runs (each with tags and metric summaries) with `kiln web` in production
mode (its gunicorn flags) from a temp data folder on SQLite, or from a scratch PostgreSQL database
when DATABASE_URL is set (dropped after); rate-limit counters live in Redis when REDIS_URL is set.
CLIENTS threads sharing ONE token (as one busy script or benchmark would; the default per-token
limit must not stop them), each on its own keep-alive connection and accepting gzip as `requests`
does, ask for one page of 50 runs as fast as they can for SECONDS seconds.
Targets: 500 requests/s, p99 latency <= 50 ms. The common case (one project, no query) is served from the
shared cache until the project's runs change (webapp.api.run_list_cache); `sorted_not_cached` asks the same
page with a sort, which builds it for every request.
The server's CPU time per request is reported too: unlike requests/s it does not depend on how
busy the machine is, so 1000 / server_cpu_ms_per_request is what one idle core can serve.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["KILN_DATA_DIR"] = tempfile.mkdtemp(prefix="kiln-bench-api-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

from scratch_db import use_scratch_database  # noqa: E402

drop_database = use_scratch_database(os.environ["KILN_DATA_DIR"])

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from webapp.accounts.tokens import token_create  # noqa: E402
from webapp.bootstrap import prepare_data_dirs  # noqa: E402
from webapp.experiments.results import MetricPoint, metrics_log  # noqa: E402
from webapp.experiments.submit import run_submit  # noqa: E402
from webapp.projects.models import Project  # noqa: E402

RUNS = 300
CLIENTS = 4
SECONDS = 5.0
WARMUP_SECONDS = 1.0
TARGET = 500.0
TARGET_P99_MS = 50.0
PAGE = 50


def _seed() -> tuple[Project, list[str]]:
    from django.contrib.auth import get_user_model

    suffix = f"{os.getpid()}-{int(time.time())}"
    user = get_user_model().objects.create_user(username=f"bench-{suffix}", password=None)
    project = Project.objects.create(slug="bench", name="Bench", owner_user=user)
    spec = {"recipe": {"model": "mlp"}, "tags": ["bench", "baseline"],
            "sweep": {"method": "random", "max_runs": RUNS, "parameters": {"optimizer.lr": {"min": 1e-4, "max": 1e-1}}}}
    runs = run_submit(user=user, project=project, spec=spec).runs
    for run in runs:
        metrics_log(run_id=run.id, points=[MetricPoint(key, 0, 0.5, 0.0) for key in ("loss", "accuracy", "val_loss")])
    token = token_create(user=user, name="bench")[1]
    return project, [token] * CLIENTS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int) -> subprocess.Popen:
    """`kiln web` as shipped (it execs gunicorn in place, so this pid is gunicorn's master); its access log is dropped."""
    from django.conf import settings

    argv = [sys.executable, "-m", "webapp.client.cli", "web", "--bind", f"127.0.0.1:{port}"]
    env = {**os.environ, "KILN_MODE": "production", "SECRET_KEY": settings.SECRET_KEY, "KILN_ALLOWED_HOSTS": "127.0.0.1"}
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def _hammer(port: int, path: str, token: str, stop_at: float, latencies: list[float], errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip, deflate"}
    mine = []
    while time.monotonic() < stop_at:
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            errors.append(f"{response.status} {body[:200]!r}")
            break
        mine.append(time.perf_counter() - start)
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    latencies.extend(mine)


def _measure(port: int, path: str, tokens: list[str], seconds: float) -> tuple[float, list[float], list[str]]:
    """(requests/s, each request's latency in s, errors) of one client per token for `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    start = time.monotonic()
    threads = [threading.Thread(target=_hammer, args=(port, path, token, start + seconds, latencies, errors)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.monotonic() - start), latencies, errors


def _percentile(samples: list[float], percent: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))] if ordered else float("nan")


def _server_cpu_seconds(server: subprocess.Popen) -> float:
    """CPU time used so far by gunicorn and its workers: a load-independent cost per request."""
    master = psutil.Process(server.pid)
    total = 0.0
    for process in [master, *master.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _database_cpu_seconds() -> float:
    """CPU time used so far by this machine's PostgreSQL processes (the server's backends among them)."""
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None and (process.info["name"] or "").startswith("postgres"):
            total += times.user + times.system
    return total


def main() -> None:
    prepare_data_dirs()
    call_command("migrate", verbosity=0)
    project, tokens = _seed()
    connection.close()
    port = _free_port()
    server = _serve(port)
    path = f"/api/runs?project={project.id}&limit={PAGE}"
    try:
        _measure(port, path, tokens, WARMUP_SECONDS)
        cpu_before, database_before, client_before = _server_cpu_seconds(server), _database_cpu_seconds(), time.process_time()
        rate, latencies, errors = _measure(port, path, tokens, SECONDS)
        served = max(1.0, rate * SECONDS)
        cpu_ms = (_server_cpu_seconds(server) - cpu_before) * 1000 / served
        client_ms = (time.process_time() - client_before) * 1000 / served
        database_ms = (_database_cpu_seconds() - database_before) * 1000 / served
        uncached_rate, uncached_latencies, uncached_errors = _measure(port, path + "&sort=-created_at", tokens, SECONDS)
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        probe.request("GET", path, headers={"Authorization": f"Bearer {tokens[0]}"})
        page = json.loads(probe.getresponse().read())
        probe.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps({
        "benchmark": "api_run_list",
        "database": connection.vendor,
        "cache": "redis" if os.environ.get("REDIS_URL") else "file",
        "runs_in_project": page["count"],
        "page_size": len(page["items"]),
        "clients": CLIENTS,
        "seconds": SECONDS,
        "requests_per_second": round(rate, 1),
        "latency_ms": {"p50": round(_percentile(latencies, 50) * 1000, 1), "p99": round(_percentile(latencies, 99) * 1000, 1),
                       "target_p99": TARGET_P99_MS},
        "server_cpu_ms_per_request": round(cpu_ms, 2),
        "client_cpu_ms_per_request": round(client_ms, 2),
        **({"database_cpu_ms_per_request": round(database_ms, 2)} if connection.vendor == "postgresql" else {}),
        "server": "kiln web (production mode)",
        "tokens": len(set(tokens)),
        "cpu_cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "target": TARGET,
        "ratio_to_target": round(rate / TARGET, 2),
        "errors": (errors + uncached_errors)[:3],
        # the same page asked with a sort: the query path, built for every request (never from the cache)
        "sorted_not_cached": {"requests_per_second": round(uncached_rate, 1),
                              "latency_ms": {"p50": round(_percentile(uncached_latencies, 50) * 1000, 1),
                                             "p99": round(_percentile(uncached_latencies, 99) * 1000, 1)}},
    }))


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_database()
