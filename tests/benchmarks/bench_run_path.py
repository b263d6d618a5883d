"""The run path: submit-to-running latency on a warm CPU worker, and metric ingestion speed.

Run: `python tests/benchmarks/bench_run_path.py` (or `make bench`). Prints one JSON object.
With DATABASE_URL pointing at PostgreSQL it creates a scratch database there (dropped at
the end); otherwise it uses SQLite and says so. Redis is the broker when REDIS_URL is set.
Targets: submit-to-running p50 <= 0.5 s; metrics_log >= 100,000 points/s on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_db import use_scratch_database  # noqa: E402

LATENCY_RUNS = 20
METRIC_POINTS = 200_000
BATCH = 10_000
LIVE_POINTS, LIVE_BATCH = 20_000, 100  # a live run's flushes: few points each, so per-batch costs show


def start(role: str, env: dict[str, str], data_dir: str) -> subprocess.Popen:
    log = open(Path(data_dir) / f"{role}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "webapp.client.cli", role], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)


def wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark cluster did not answer in time")
        time.sleep(0.01)


def submit_to_running(project, user) -> list[float]:
    from webapp.experiments.models import Run, RunEvent, RunState
    from webapp.experiments.submit import CodeUpload, run_submit

    code = CodeUpload(filename="main.py", data=b"print('hi')\n")
    latencies = []
    for _ in range(LATENCY_RUNS + 2):  # the first two warm the worker and the scheduler
        run = run_submit(user=user, project=project, spec={}, code=code).runs[0]
        wait(lambda run=run: Run.objects.filter(id=run.id, state__in=[RunState.SUCCEEDED, RunState.FAILED]).exists(), 60)
        times = dict(RunEvent.objects.filter(run=run).values_list("to_state", "at"))
        latencies.append((times[RunState.RUNNING] - times[RunState.QUEUED]).total_seconds())
    return latencies[2:]


def ingestion(project, user, *, number: int, total: int, batch: int) -> float:
    """Points per second through metrics_log: `total` points of four keys in batches of `batch`, steps in order."""
    from webapp.experiments.models import Run
    from webapp.experiments.results import MetricPoint, metrics_log

    run = Run.objects.create(project=project, owner=user, number=number, name="bench", kind="code", spec={})
    keys = ("loss", "acc", "lr", "grad_norm")
    points = [MetricPoint(key=keys[i % 4], step=i // 4, value=1.0 / (i + 1), wall_time=time.time())
              for i in range(total)]
    started = time.perf_counter()
    for offset in range(0, len(points), batch):
        metrics_log(run_id=run.id, points=points[offset : offset + batch])
    return total / (time.perf_counter() - started)


def main() -> None:
    data_dir = tempfile.mkdtemp(prefix="kiln-bench-run-")
    os.environ["KILN_DATA_DIR"] = data_dir
    drop_database = use_scratch_database(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    env = {**os.environ, "KILN_WORKER_NAME": f"bench-{os.getpid()}", "KILN_HEARTBEAT_SECONDS": "1"}
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run([sys.executable, "-m", "webapp.client.cli", "setup"], env=env, check=True, cwd=ROOT,
                       capture_output=True)
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User

        from webapp.cluster.selectors import workers_online
        from webapp.projects.models import Project

        user = User.objects.create_user("bench", password="bench-password-123")
        project = Project.objects.create(slug="bench", name="Bench", owner_user=user)
        procs = [start("scheduler", env, data_dir), start("worker", env, data_dir)]
        wait(lambda: workers_online().exists(), 60)
        latencies = submit_to_running(project, user)
        points_per_second = ingestion(project, user, number=10_000, total=METRIC_POINTS, batch=BATCH)
        live_per_second = ingestion(project, user, number=10_001, total=LIVE_POINTS, batch=LIVE_BATCH)
        quantiles = statistics.quantiles(latencies, n=20)
        print(json.dumps({
            "benchmark": "run_path",
            "database": settings.CONFIG.database_vendor,
            "broker": "redis" if settings.CONFIG.redis_url else "filesystem",
            "submit_to_running_s": {"p50": round(statistics.median(latencies), 3), "p95": round(quantiles[18], 3),
                                    "runs": len(latencies), "target_p50": 0.5},
            "metric_ingestion": {"points_per_s": round(points_per_second), "points": METRIC_POINTS,
                                 "batch": BATCH, "target_points_per_s": 100_000,
                                 "small_batches": {"points_per_s": round(live_per_second), "batch": LIVE_BATCH}},
        }))
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
        drop_database()


if __name__ == "__main__":
    main()
