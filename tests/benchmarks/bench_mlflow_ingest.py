"""MLflow `log_batch` ingestion in points/s: the same MLflow client logging into Kiln and into a real MLflow server.

Run: `python tests/benchmarks/bench_mlflow_ingest.py` (or `make bench`). Prints one JSON object.
Kiln serves over real HTTP (Django's threaded WSGI server, one process) on a scratch database: PostgreSQL
where `make bench` finds it, else SQLite. The MLflow server (`mlflow server`, SQLite backend, one worker)
runs when the full `mlflow` package is installed (test-only); otherwise its figure is null, said so.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scratch_db import use_scratch_database
from services import mlflow_server_binary

DATA = tempfile.mkdtemp(prefix="kiln-bench-")
os.environ["KILN_DATA_DIR"] = DATA
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ["KILN_API_RATE_LIMIT"] = "1000000/60"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
drop_database = use_scratch_database(DATA)

import django  # noqa: E402

django.setup()

BATCHES = 40  # of 1000 points each (MLflow's per-call limit): 10 keys x 100 steps
KEYS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_kiln() -> str:
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadedWSGIServer(("127.0.0.1", port), Quiet)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}"


def serve_mlflow(folder: Path) -> tuple[str | None, subprocess.Popen | None, str]:
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
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return url, process, ""
        except OSError:
            time.sleep(1)
    return None, process, "the MLflow server did not start"


def points_per_second(url: str) -> float:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(experiment)
    now = int(time.time() * 1000)
    batches = [[Metric(f"m{k}", float(b * 100 + s) * 0.5, now + s, b * 100 + s) for k in range(KEYS) for s in range(100)]
               for b in range(BATCHES)]
    client.log_batch(run.info.run_id, metrics=batches[0])  # warm: connection, first insert
    start = time.perf_counter()
    for batch in batches[1:]:
        client.log_batch(run.info.run_id, metrics=batch)
    elapsed = time.perf_counter() - start
    assert len(client.get_metric_history(run.info.run_id, "m0")) == BATCHES * 100
    return (BATCHES - 1) * len(batches[0]) / elapsed


def main() -> None:
    from django.core.management import call_command

    from webapp.accounts.tokens import token_create
    from webapp.bootstrap import prepare_data_dirs

    prepare_data_dirs()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="bench", password="bench-password-1")
    os.environ["MLFLOW_TRACKING_TOKEN"] = token_create(user=user, name="bench")[1]
    from django.db import connection

    kiln = points_per_second(serve_kiln())
    mlflow_url, process, why = serve_mlflow(Path(DATA))
    try:
        baseline = points_per_second(mlflow_url) if mlflow_url else None
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    result = {
        "benchmark": "mlflow_ingest", "database": connection.vendor, "points_per_call": KEYS * 100,
        "calls": BATCHES - 1, "kiln_points_per_s": round(kiln), "mlflow_server_sqlite_points_per_s":
        None if baseline is None else round(baseline),
        "ratio_kiln_to_mlflow": None if baseline is None else round(kiln / baseline, 2),
    }
    if why:
        result["mlflow_server"] = why
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_database()
