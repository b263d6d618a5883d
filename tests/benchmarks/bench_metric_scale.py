"""What ingestion, a run's chart and the compare view cost as the metric table grows: 10 M points (and 100 M).

Run: `python tests/benchmarks/bench_metric_scale.py` (PostgreSQL: DATABASE_URL, as `make bench` sets it);
`KILN_BENCH_SCALE_100M=1` loads on to 100 M points (about 15 GB and half an hour here). Prints one JSON object.
On a scratch database it measures, at each stored size, the median of REPEATS of:
- ingestion: `metrics_log_series` of a 10,000-point batch (4 keys) and of a 100-point batch into a run;
- a run's chart: the whole series from its rollup (`overviews`) and a 10,000-step range at full
  resolution (`read_points`, the metric table's primary key);
- the compare view's data: overviews of 100 runs x 4 metrics (one query over the rollups).
Filler points are binary-COPYed into the metric table under 1,000 run ids per 10 M (the table has
no foreign key; the filler needs no run rows): what grows is the table, its partitions and indexes.
Extrapolation to 1 B: each cost is fitted as a + b * log10(stored points) (a B-tree lookup's depth grows
with the log of its partition's rows; hash partitioning by run keeps every query on its runs' partitions),
and the fit is evaluated at 1e9. A cost that does not grow has b ~ 0.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["KILN_DATA_DIR"] = tempfile.mkdtemp(prefix="kiln-bench-scale-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
os.environ.pop("REDIS_URL", None)

from scratch_db import use_scratch_database  # noqa: E402

drop_database = use_scratch_database(os.environ["KILN_DATA_DIR"])

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

REPEATS = 5
SIZES = [10_000_000] + ([100_000_000] if os.environ.get("KILN_BENCH_SCALE_100M") else [])
FILLER_RUN_BASE = 10**9  # filler run ids, far past the real ones
FILLER_STEPS = 1000  # per (run, key); 10 keys: 10,000 points a filler run
FILLER_KEYS = [f"filler/m{k}" for k in range(10)]
COMPARE_RUNS, COMPARE_KEYS, COMPARE_POINTS = 100, ["loss", "acc", "lr", "val_loss"], 1000
CHART_POINTS = 100_000
FIT_AT = 1_000_000_000


def _runs(count: int) -> list[int]:
    from django.contrib.auth import get_user_model

    from webapp.experiments.submit import run_submit
    from webapp.projects.models import Project

    user = get_user_model().objects.create_user(username=f"scale-{time.time_ns()}", password=None)
    project = Project.objects.create(slug=f"scale-{time.time_ns()}", name="Scale", owner_user=user)
    spec = {"recipe": {"model": "mlp"},
            "sweep": {"method": "random", "max_runs": count, "parameters": {"optimizer.lr": {"min": 1e-4, "max": 1e-1}}}}
    return [run.id for run in run_submit(user=user, project=project, spec=spec).runs]


def _log(run_id: int, keys: list[str], first: int, count: int) -> float:
    from webapp.experiments.results import metrics_log_series

    steps = np.arange(first, first + count, dtype=np.int64)
    values = np.sin(steps / 100.0)
    walls = 1.7e9 + steps * 0.01
    started = time.perf_counter()
    metrics_log_series(run_id=run_id, series=[(key, steps, values, walls) for key in keys])
    return time.perf_counter() - started


def _fill(start: int, stop: int) -> float:
    """COPY filler points so the table holds `stop` of them (it holds `start`); returns the seconds it took."""
    import psycopg

    from webapp.experiments.results import _COPY_HEADER, _COPY_TRAILER, KeyPoints, _copy_rows

    per_run = FILLER_STEPS * len(FILLER_KEYS)
    started = time.perf_counter()
    steps = np.arange(FILLER_STEPS, dtype=np.int64)
    group = KeyPoints(steps, np.cos(steps / 50.0), 1.7e9 + steps.astype(np.float64))
    connection.ensure_connection()
    for first in range(start // per_run, stop // per_run, 100):  # 100 filler runs (1 M points) a COPY
        rows = b"".join(_copy_rows(FILLER_RUN_BASE + run, key.encode(), group)
                        for run in range(first, min(first + 100, stop // per_run)) for key in FILLER_KEYS)
        with psycopg.Cursor(connection.connection) as cursor, cursor.copy(
                "COPY experiments_metric (run_id, key, step, value, wall_time) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_HEADER + rows + _COPY_TRAILER)
        connection.connection.commit()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE experiments_metric")
    return time.perf_counter() - started


def _median_ms(measure, repeats: int = REPEATS) -> float:
    return round(statistics.median(measure() for _ in range(repeats)) * 1000, 2)


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _costs(ingest_run: int, chart_run: int, compare_runs: list[int], next_step: list[int]) -> dict[str, float]:
    from webapp.dashboards.series import overviews, read_points, series_refs

    def ingest(points: int):
        def once() -> float:
            seconds = _log(ingest_run, COMPARE_KEYS, next_step[0], points // len(COMPARE_KEYS))
            next_step[0] += points // len(COMPARE_KEYS)
            return seconds
        return once

    middle = CHART_POINTS // 2
    return {
        "ingest_10k_batch_ms": _median_ms(ingest(10_000)),
        "ingest_100_batch_ms": _median_ms(ingest(100)),
        "chart_overview_ms": _median_ms(lambda: _timed(lambda: overviews(series_refs([chart_run], ["loss"]), 1000))),
        "chart_range_10k_ms": _median_ms(lambda: _timed(lambda: read_points(chart_run, "loss", lo=middle, hi=middle + 9_999))),
        "compare_100_runs_4_keys_ms": _median_ms(
            lambda: _timed(lambda: overviews(series_refs(compare_runs, COMPARE_KEYS), 1000))),
    }


def _table_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(SUM(pg_total_relation_size(inhrelid)), pg_total_relation_size('experiments_metric')) "
                       "FROM pg_inherits WHERE inhparent = 'experiments_metric'::regclass")
        return int(cursor.fetchone()[0])


def _stored() -> int:
    """Points in the table, from the statistics a fresh ANALYZE leaves (an exact count would take minutes at 100 M)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE experiments_metric")
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'experiments_metric'")
        estimate = int(cursor.fetchone()[0])
        cursor.execute("SELECT SUM(c.reltuples)::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = 'experiments_metric'::regclass")
        parts = cursor.fetchone()[0]
    return int(parts) if parts is not None else estimate


def _fit(sizes: list[int], costs: list[float]) -> tuple[float, float, float]:
    """(a, b, cost at FIT_AT) of cost = a + b * log10(size), least squares."""
    x = np.log10(np.array(sizes, np.float64))
    b, a = np.polyfit(x, np.array(costs), 1) if len(set(sizes)) > 1 else (0.0, float(costs[0]))
    return float(a), float(b), float(a + b * np.log10(FIT_AT))


def main() -> None:
    if connection.vendor != "postgresql":
        print(json.dumps({"benchmark": "metric_scale", "skipped": "needs PostgreSQL (DATABASE_URL): the table is "
                                                                   "partitioned there only"}))
        return
    call_command("migrate", verbosity=0)
    runs = _runs(COMPARE_RUNS + 2)
    ingest_run, chart_run, compare_runs = runs[0], runs[1], runs[2:]
    for start in range(0, CHART_POINTS, 10_000):
        _log(chart_run, ["loss"], start, 10_000)
    for run in compare_runs:
        _log(run, COMPARE_KEYS, 0, COMPARE_POINTS)
    next_step = [0]
    measured = []
    stored = 0
    load_seconds = 0.0
    for size in [0, *SIZES]:
        if size > stored:
            load_seconds += _fill(stored, size)
            stored = size
        measured.append({"stored_points": _stored(), "table_bytes": _table_bytes(),
                         **_costs(ingest_run, chart_run, compare_runs, next_step)})
    sizes = [max(row["stored_points"], 1) for row in measured]
    reference = measured[1]  # the 10 M row
    extrapolated = {}
    for cost in [k for k in measured[0] if k.endswith("_ms")]:
        a, b, at = _fit(sizes, [row[cost] for row in measured])
        extrapolated[cost] = {"a_ms": round(a, 3), "b_ms_per_decade": round(b, 3), "at_1e9_ms": round(at, 2),
                              "ratio_1e9_to_10m": round(at / reference[cost], 2) if reference[cost] else None}
    print(json.dumps({
        "benchmark": "metric_scale", "database": "postgresql", "partitions": _partitions(),
        "model": "cost = a + b*log10(stored points), least squares over every measured size (the first: the probe runs alone), evaluated at 1e9",
        "filler_load_points_per_s": round(SIZES[-1] / load_seconds) if load_seconds else None,
        "load_average_1min": round(os.getloadavg()[0], 1), "cpu_cores": os.cpu_count(), "repeats": REPEATS,
        "measured": measured, "extrapolated_to_1e9": extrapolated,
    }))


def _partitions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'experiments_metric'::regclass")
        return int(cursor.fetchone()[0])


if __name__ == "__main__":
    try:
        main()
    finally:
        drop_database()
