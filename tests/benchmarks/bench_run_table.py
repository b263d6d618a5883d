"""Server time of the run table's first page for a project with 100,000 runs.

Run: `python tests/benchmarks/bench_run_table.py` (or `make bench`). Prints one JSON object.
Uses a temporary SQLite file, or, when DATABASE_URL points at PostgreSQL, a temporary
database created beside it and dropped afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_db import use_scratch_database

RUNS = 100_000
TARGET_MS = 300.0
REPEATS = 15


def _use_temp_database() -> Callable[[], None]:
    os.environ["KILN_DATA_DIR"] = tempfile.mkdtemp(prefix="kiln-bench-")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    return use_scratch_database(os.environ["KILN_DATA_DIR"])


def _populate():
    from django.contrib.auth import get_user_model

    from webapp.experiments.models import MetricSummary, Run, RunTag
    from webapp.projects.models import Project

    users = [get_user_model().objects.create_user(username=f"user{i}") for i in range(5)]
    project = Project.objects.create(slug="big", name="Big", owner_user=users[0], run_counter=RUNS)
    spec = {"recipe": {"model": "mlp", "optimizer": {"name": "adam", "lr": 0.001}}}
    states = ["succeeded"] * 6 + ["failed", "cancelled", "queued", "running"]
    Run.objects.bulk_create(
        (
            Run(project=project, owner=users[n % 5], number=n, name=f"mlp-digits-{n}", kind="recipe", spec=spec,
                params={"optimizer.lr": 0.001 * (n % 7 + 1), "seed": n % 10}, state=states[n % len(states)])
            for n in range(1, RUNS + 1)
        ),
        batch_size=5000,
    )
    # a few summaries and tags: the newest runs (on the first page) and a sprinkling of older ones
    ids = list(Run.objects.filter(project=project).filter(number__gt=RUNS - 100).values_list("id", flat=True))
    ids += list(Run.objects.filter(project=project, number__lte=RUNS - 100, number__regex=r"000$").values_list("id", flat=True))
    MetricSummary.objects.bulk_create(
        MetricSummary(run_id=run_id, key=key, last=0.5 + (run_id % 13) / 10, last_step=99, min=0.1, max=2.0, count=100)
        for run_id in ids for key in ("loss", "val/acc", "lr")
    )
    RunTag.objects.bulk_create(RunTag(run_id=run_id, name="baseline") for run_id in ids)
    return project, users[0]


def median_ms(call) -> float:
    for _ in range(3):
        call()
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    drop_database = _use_temp_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from webapp.bootstrap import prepare_data_dirs

    try:
        prepare_data_dirs()
        call_command("migrate", verbosity=0)
        project, owner = _populate()
        if connections["default"].vendor == "postgresql":
            with connections["default"].cursor() as cursor:
                cursor.execute("ANALYZE")  # what autovacuum does after a bulk load; plans need the statistics
        client = Client()
        client.force_login(owner)
        url = f"/p/{project.id}/"

        def first_page(query: str = "") -> None:
            response = client.get(url + query)
            assert response.status_code == 200 and response.content.count(b"<tr data-run=") == 25, response.status_code

        ms = median_ms(first_page)
        variants = {
            name: round(median_ms(lambda query=query: first_page(query)), 1)
            for name, query in (
                ("state_filter", "?state=succeeded"),
                ("name_search", "?q=digits-99"),
                ("page_40", "?page=40"),
            )
        }
        print(json.dumps({
            "benchmark": "run_table_first_page",
            "runs": RUNS,
            "median_ms": round(ms, 1),
            "target_ms": TARGET_MS,
            "ratio_to_target": round(ms / TARGET_MS, 3),
            "database": connections["default"].vendor,
            "other_pages_median_ms": variants,
        }))
    finally:
        drop_database()


if __name__ == "__main__":
    main()
