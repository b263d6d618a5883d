"""Metric ingestion through the public HTTP API, from separate client processes: Kiln against MLflow in one run.

Run: `python tests/benchmarks/bench_ingest_http.py` (or `make bench`). Prints one JSON object.
Kiln is `kiln web` as shipped (gunicorn, production mode) on a scratch database (PostgreSQL where
DATABASE_URL points at it). The peer is a real MLflow server (`make mlflow-server`; 2 workers, like
`kiln web`) whose store is a scratch database on the same PostgreSQL (SQLite without psycopg2 there),
fed through its REST `runs/log-batch` (1,000 metrics a call, its limit).
Each case runs REPEATS times; the median is reported. Clients are processes of their own, each
with one keep-alive connection, its own run and token, sending bodies encoded before the clock
starts (so the figure is the server's). Targets (issue 19): >= 150k points/s with 4 clients and
10k-point batches; >= 20k points/s with 100-point batches from one client.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
DATA = Path(tempfile.mkdtemp(prefix="kiln-bench-ingest-"))
os.environ["KILN_DATA_DIR"] = str(DATA)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ["KILN_API_RATE_LIMIT"] = "100000000/60"  # the benchmark measures ingestion, not the limiter
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

from scratch_db import use_scratch_database  # noqa: E402
from services import mlflow_server_binary  # noqa: E402

SERVER_URL = os.environ.get("DATABASE_URL", "")
drop_database = use_scratch_database(str(DATA))

import django  # noqa: E402

django.setup()

REPEATS = int(os.environ.get("KILN_BENCH_REPEATS", "3"))
KEYS = 4  # metrics a step; a 10k-point batch is 2,500 steps of 4 keys
CASES = [  # (name, clients, points a request, requests a client)
    ("4_clients_10k_batches", 4, 10_000, 12),
    ("1_client_100_batches", 1, 100, 600),
]
MLFLOW_DATABASE = f"kiln_bench_mlflow_{os.getpid()}"
TARGETS = {"4_clients_10k_batches": 150_000, "1_client_100_batches": 20_000}

# The client process: reads length-prefixed bodies, waits for the start time, posts them one after another.
CLIENT = r"""
import http.client, json, struct, sys, time
host, port, path, headers, bodies_file, start_at = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]), sys.argv[5], float(sys.argv[6])
bodies = []
with open(bodies_file, "rb") as f:
    while head := f.read(4):
        bodies.append(f.read(struct.unpack(">I", head)[0]))
conn = http.client.HTTPConnection(host, port, timeout=120)
while time.time() < start_at:
    time.sleep(0.001)
began = time.time()
for body in bodies:
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        print(json.dumps({"error": f"{response.status} {data[:300]!r}"})); sys.exit(1)
print(json.dumps({"began": began, "ended": time.time()}))
"""


# A script logging every step through the background batcher (engine.track's, and Client.metric_logger's).
TRACKING = r"""
import json, sys, time
from engine.track.remote import MetricBatcher
url, token, run, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
batcher = MetricBatcher(url, token, run)
began = time.perf_counter()
for step in range(steps):
    batcher.log({"m0": 1.0 / (step + 1), "m1": 0.5, "m2": step * 0.1, "m3": 2.0}, step=step)
logged = time.perf_counter()
batcher.close()
print(json.dumps({"log_call_us": (logged - began) / steps * 1e6, "seconds": time.perf_counter() - began, "sent": batcher.sent}))
"""
TRACKING_STEPS = 50_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer")


def serve_kiln(port: int) -> subprocess.Popen:
    """`kiln web` as shipped: production mode, gunicorn (it execs in place); its access log dropped."""
    env = {**os.environ, "KILN_MODE": "production", "SECRET_KEY": "bench-" + "x" * 50, "KILN_ALLOWED_HOSTS": "127.0.0.1"}
    argv = [sys.executable, "-m", "webapp.client.cli", "web", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(f"http://127.0.0.1:{port}/healthz", server)
    return server


def serve_mlflow(port: int) -> tuple[subprocess.Popen | None, str, str]:
    """(process, store, why not) of a real MLflow server on a scratch PostgreSQL database (or SQLite)."""
    binary = mlflow_server_binary()
    if binary is None:
        return None, "", "the test-only MLflow server is not installed (make mlflow-server)"
    store = f"sqlite:///{DATA}/mlflow.db"
    has_psycopg2 = subprocess.run([str(binary.parent / "python"), "-c", "import psycopg2"], capture_output=True).returncode == 0
    if SERVER_URL.startswith("postgres") and has_psycopg2:
        _maintenance(f'CREATE DATABASE "{MLFLOW_DATABASE}"')
        store = urlunparse(urlparse(SERVER_URL)._replace(scheme="postgresql+psycopg2", path=f"/{MLFLOW_DATABASE}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "DATABASE_URL"))}
    process = subprocess.Popen(
        [str(binary), "server", "--backend-store-uri", store, "--artifacts-destination", str(DATA / "mlflow-artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", process)
    except SystemExit:
        os.killpg(process.pid, signal.SIGTERM)
        raise
    return process, store.split(":", 1)[0], ""


def _maintenance(sql: str) -> None:
    import psycopg

    with psycopg.connect(urlunparse(urlparse(SERVER_URL)._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(sql)


def _kiln_bodies(points: int, requests: int) -> list[bytes]:
    steps_per = points // KEYS
    bodies = []
    for r in range(requests):
        steps = list(range(r * steps_per, (r + 1) * steps_per))
        walls = [1.7e9 + s * 0.01 for s in steps]
        bodies.append(orjson.dumps({"series": [
            {"key": f"m{k}", "steps": steps, "values": [1.0 / (s + k + 1) for s in steps], "wall_times": walls}
            for k in range(KEYS)]}))
    return bodies


def _kiln_row_bodies(points: int, requests: int) -> list[bytes]:
    steps_per = points // KEYS
    return [orjson.dumps({"points": [
        {"key": f"m{k}", "step": s, "value": 1.0 / (s + k + 1), "wall_time": 1.7e9 + s * 0.01}
        for s in range(r * steps_per, (r + 1) * steps_per) for k in range(KEYS)]}) for r in range(requests)]


def _mlflow_bodies(run_id: str, points: int, requests: int) -> list[bytes]:
    steps_per = points // KEYS
    return [orjson.dumps({"run_id": run_id, "metrics": [
        {"key": f"m{k}", "value": 1.0 / (s + k + 1), "timestamp": 1_700_000_000_000 + s * 10, "step": s}
        for s in range(r * steps_per, (r + 1) * steps_per) for k in range(KEYS)]}) for r in range(requests)]


def _clients(port: int, jobs: list[tuple[str, dict, list[bytes]]], folder: Path) -> dict:
    """Run one client process per job at once; points/s over the span from first start to last end."""
    start_at = time.time() + 3.0
    processes = []
    for i, (path, headers, bodies) in enumerate(jobs):
        file = folder / f"bodies-{i}-{time.time_ns()}"
        file.write_bytes(b"".join(struct.pack(">I", len(b)) + b for b in bodies))
        processes.append(subprocess.Popen(
            [sys.executable, "-c", CLIENT, "127.0.0.1", str(port), path, json.dumps(headers), str(file), str(start_at)],
            stdout=subprocess.PIPE, text=True))
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in processes]
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit(f"a client failed: {errors[0]}")
    span = max(r["ended"] for r in results) - min(r["began"] for r in results)
    return {"seconds": span}


def _cpu_seconds(pid: int) -> float:
    total = 0.0
    master = psutil.Process(pid)
    for process in [master, *master.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _kiln_runs(count: int) -> tuple[list[int], list[str]]:
    from django.contrib.auth import get_user_model

    from webapp.accounts.tokens import token_create
    from webapp.experiments.submit import run_submit
    from webapp.projects.models import Project

    user = get_user_model().objects.create_user(username=f"bench-{time.time_ns()}", password=None)
    project = Project.objects.create(slug=f"bench-{time.time_ns()}", name="Bench", owner_user=user)
    runs = [run_submit(user=user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0].id for _ in range(count)]
    return runs, [token_create(user=user, name=f"bench {i}")[1] for i in range(count)]


def _mlflow_runs(port: int, count: int) -> list[str]:
    def call(path: str, body: dict) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    experiment = call("experiments/create", {"name": f"bench-{time.time_ns()}"})["experiment_id"]
    return [call("runs/create", {"experiment_id": experiment})["run"]["info"]["run_id"] for _ in range(count)]


def _kiln_case(port: int, server_pid: int, clients: int, points: int, requests: int, rows: bool) -> tuple[float, float]:
    from django.db import connection

    runs, tokens = _kiln_runs(clients)
    connection.close()
    encode = _kiln_row_bodies if rows else _kiln_bodies
    jobs = [(f"/api/runs/{run}/metrics", {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
             encode(points, requests)) for run, token in zip(runs, tokens, strict=True)]
    cpu = _cpu_seconds(server_pid)
    span = _clients(port, jobs, DATA)["seconds"]
    total = clients * points * requests
    return total / span, (_cpu_seconds(server_pid) - cpu) * 1e6 / total


def _mlflow_case(port: int, clients: int, points: int, requests: int) -> float:
    batch = min(points, 1000)  # MLflow's log-batch limit
    runs = _mlflow_runs(port, clients)
    jobs = [("/api/2.0/mlflow/runs/log-batch", {"Content-Type": "application/json"},
             _mlflow_bodies(run, batch, requests * points // batch)) for run in runs]
    return clients * points * requests / _clients(port, jobs, DATA)["seconds"]


def _tracking_case(port: int) -> dict:
    from django.db import connection

    runs, tokens = _kiln_runs(1)
    connection.close()
    done = subprocess.run([sys.executable, "-c", TRACKING, f"http://127.0.0.1:{port}", tokens[0], str(runs[0]), str(TRACKING_STEPS)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sent"] == TRACKING_STEPS * KEYS, result
    return {"log_call_us": result["log_call_us"], "points_per_s": TRACKING_STEPS * KEYS / result["seconds"]}


def main() -> None:
    from django.core.management import call_command
    from django.db import connection

    from webapp.bootstrap import prepare_data_dirs

    prepare_data_dirs()
    call_command("migrate", verbosity=0)
    vendor = connection.vendor
    connection.close()
    kiln_port, mlflow_port = _free_port(), _free_port()
    kiln = serve_kiln(kiln_port)
    mlflow, mlflow_store, why = None, "", ""
    cases: dict[str, dict] = {}
    try:
        mlflow, mlflow_store, why = serve_mlflow(mlflow_port)
        _kiln_case(kiln_port, kiln.pid, 1, 1000, 20, rows=False)  # warm: workers, connections, code paths
        for name, clients, points, requests in CASES:
            rates: dict[str, list[float]] = {"kiln_columns": [], "kiln_rows": [], "mlflow": []}
            cpu_us: list[float] = []
            for _ in range(REPEATS):
                rate, cpu = _kiln_case(kiln_port, kiln.pid, clients, points, requests, rows=False)
                rates["kiln_columns"].append(rate)
                cpu_us.append(cpu)
                rates["kiln_rows"].append(_kiln_case(kiln_port, kiln.pid, clients, points, requests, rows=True)[0])
                if mlflow is not None:
                    rates["mlflow"].append(_mlflow_case(mlflow_port, clients, points, max(1, requests // 4)))
            median = {k: round(statistics.median(v)) if v else None for k, v in rates.items()}
            cases[name] = {
                "clients": clients, "points_per_request": points,
                "kiln_columns_points_per_s": median["kiln_columns"], "kiln_rows_points_per_s": median["kiln_rows"],
                "mlflow_points_per_s": median["mlflow"],
                "ratio_kiln_to_mlflow": round(median["kiln_columns"] / median["mlflow"], 1) if median["mlflow"] else None,
                "target_points_per_s": TARGETS[name], "ratio_to_target": round(median["kiln_columns"] / TARGETS[name], 2),
                "kiln_web_cpu_us_per_point": round(statistics.median(cpu_us), 2),
                "runs": {k: [round(x) for x in v] for k, v in rates.items()},
            }
        tracking = [_tracking_case(kiln_port) for _ in range(REPEATS)]
        cases["log_every_step_in_background"] = {
            "what": f"one process logs {TRACKING_STEPS:,} steps x {KEYS} keys with MetricBatcher.log, then closes it",
            "log_call_us": round(statistics.median(t["log_call_us"] for t in tracking), 2),
            "points_per_s_until_all_stored": round(statistics.median(t["points_per_s"] for t in tracking)),
        }
    finally:
        kiln.terminate()
        kiln.wait(timeout=30)
        if mlflow is not None:
            os.killpg(mlflow.pid, signal.SIGTERM)
            mlflow.wait(timeout=60)
        if SERVER_URL.startswith("postgres"):
            _maintenance(f'DROP DATABASE IF EXISTS "{MLFLOW_DATABASE}" WITH (FORCE)')
    result = {
        "benchmark": "ingest_http", "database": vendor, "server": "kiln web (gunicorn, production mode)",
        "peer": "mlflow server runs/log-batch", "mlflow_store": mlflow_store or None, "repeats": REPEATS,
        "cpu_cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1), "cases": cases,
    }
    if why:
        result["mlflow_server"] = why
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_database()
