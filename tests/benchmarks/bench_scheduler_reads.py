"""What the scheduler reads besides runs and workers each tick, over 10,000 runs of the last 35 days.

Run: `python tests/benchmarks/bench_scheduler_reads.py` (or `make bench`). Prints one JSON object:
the first read of the usage history (as after a start), a tick's read once it is kept (the runs
that finished since, and the running ones), and the run-time estimates' refresh and lookup.
Uses a temporary SQLite file, or a temporary PostgreSQL database beside DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scratch_db import use_scratch_database

FINISHED_RUNS = 10_000
RUNNING_RUNS = 100
TARGET_TICK_MS = 20.0
REPEATS = 15


def _use_temp_database() -> Callable[[], None]:
    os.environ["KILN_DATA_DIR"] = tempfile.mkdtemp(prefix="kiln-bench-")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    return use_scratch_database(os.environ["KILN_DATA_DIR"])


def _populate() -> list:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from webapp.accounts.models import Team
    from webapp.experiments.models import Run
    from webapp.projects.models import Project

    rng = random.Random(5)
    users = [get_user_model().objects.create_user(username=f"user{i}") for i in range(50)]
    teams = [Team.objects.create(slug=f"team{i}", name=f"Team {i}") for i in range(8)]
    projects = [Project.objects.create(slug=f"p{i}", name=f"P{i}", owner_user=users[i]) for i in range(50)]
    projects += [Project.objects.create(slug=f"t{i}", name=f"T{i}", team=team, owner_user=None)
                 for i, team in enumerate(teams)]
    now = timezone.now()
    runs = []
    for n in range(FINISHED_RUNS + RUNNING_RUNS):
        project = projects[n % len(projects)]
        minutes = rng.uniform(1, 240)
        end = now - timedelta(minutes=rng.uniform(1, 35 * 24 * 60))
        running = n >= FINISHED_RUNS
        spec = {"recipe": {"model": rng.choice(("mlp", "cnn", "gpt"))}, "resources": {"cpus": rng.choice((1, 2, 8))}}
        runs.append(Run(
            project=project, owner=users[n % 50], number=n + 1, name=f"run-{n}", kind="recipe", spec=spec,
            gpus=rng.choice((0, 0, 1, 2, 4)), memory_gb=rng.choice((0, 8, 32)),
            state="running" if running else "succeeded", started_at=(now if running else end) - timedelta(minutes=minutes),
            finished_at=None if running else end,
        ))
    Run.objects.bulk_create(runs, batch_size=2000)
    return projects


def median_ms(call: Callable[[], object], repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
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

    from scheduler.accounting import DurationHistory, UsageLedger
    from scheduler.policy import ClusterCapacity, Limits, PolicyConfig, Quotas
    from webapp.bootstrap import prepare_data_dirs

    try:
        prepare_data_dirs()
        call_command("migrate", verbosity=0)
        projects = _populate()
        if connections["default"].vendor == "postgresql":
            with connections["default"].cursor() as cursor:
                cursor.execute("ANALYZE")
        config, capacity = PolicyConfig(), ClusterCapacity(gpus=400, cpu_slots=3200, memory_mb=100 * 512 * 1024)
        full_ms = median_ms(lambda: UsageLedger().totals(config, time.time(), capacity), repeats=5)
        ledger = UsageLedger()
        ledger.totals(config, time.time(), capacity)
        tick_ms = median_ms(lambda: ledger.totals(config, time.time(), capacity))
        limited = PolicyConfig(quotas=Quotas(users={f"user{u}": Limits(gpu_hours_per_week=50) for u in range(5)},
                                             teams={"team0": Limits(gpu_hours_per_week=500)}))
        week_ms = median_ms(lambda: ledger.totals(limited, time.time(), capacity, week_gpu_seconds=True), repeats=5)
        subjects = [(project.id, "recipe", f"{model}/digits") for project in projects for model in ("mlp", "cnn", "gpt")]
        refresh_ms = median_ms(lambda: DurationHistory().estimates(subjects), repeats=5)
        history = DurationHistory()
        history.estimates(subjects)
        lookup_ms = median_ms(lambda: history.estimates(subjects * 30))
        print(json.dumps({
            "benchmark": "scheduler_reads",
            "finished_runs": FINISHED_RUNS,
            "running_runs": RUNNING_RUNS,
            "usage_first_read_ms": round(full_ms, 1),
            "usage_tick_ms": round(tick_ms, 1),
            "usage_tick_with_gpu_hour_quotas_ms": round(week_ms, 1),
            "estimates_refresh_ms": round(refresh_ms, 1),
            "estimates_lookup_ms": round(lookup_ms, 2),
            "target_tick_ms": TARGET_TICK_MS,
            "ratio_to_target": round(tick_ms / TARGET_TICK_MS, 3),
            "database": connections["default"].vendor,
        }))
    finally:
        drop_database()


if __name__ == "__main__":
    main()
