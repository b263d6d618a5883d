"""Time of one scheduling policy pass over 10,000 queued runs and 100 workers.

Run: `python tests/benchmarks/bench_scheduler_pass.py` (or `make bench`). Prints one JSON object.
The cluster is mixed (8-, 4- and 2-GPU machines and CPU-only ones), most of it busy, with
jobs whose expected ends are known, so the pass also computes a reservation and backfills.
Runs ask for memory too and half of them are user code; every tenth worker may not run code.
Three resource dimensions (GPUs, CPU slots, memory) are packed and charged to fair share; quotas
limit every user (GPUs, CPUs, memory, runs) and every team (GPUs, GPU-hours per week); half of the
queued runs carry an expected run time from history, as the loop gives them.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scheduler.policy import (
    Limits,
    PolicyConfig,
    QueuedRun,
    Quotas,
    RunningRun,
    UsageTotals,
    WorkerState,
    plan_pass,
)

QUEUED_RUNS = 10_000
WORKERS = 100
TARGET_MS = 100.0
REPEATS = 15
NOW = 1_700_000_000.0


def build_workers(rng: random.Random) -> list[WorkerState]:
    workers = []
    next_run_id = 1_000_000
    for number in range(WORKERS):
        gpu_count = (8, 8, 4, 2, 0)[number % 5]
        cpu_slots = 32 if gpu_count else 64
        memory_mb = (512 if gpu_count else 256) * 1024
        busy_gpus = rng.randint(0, gpu_count) if number % 3 else gpu_count
        running = []
        for _ in range(busy_gpus):
            next_run_id += 1
            running.append(
                RunningRun(
                    next_run_id,
                    f"user{rng.randrange(50)}",
                    f"team{rng.randrange(8)}",
                    1,
                    1,
                    NOW + rng.uniform(60, 36_000),
                    rng.choice((8, 16, 32)) * 1024,
                )
            )
        free_gpus = tuple(range(busy_gpus, gpu_count))
        free_cpu = cpu_slots - busy_gpus - (rng.randint(0, 8) if gpu_count == 0 else 0)
        free_memory = memory_mb - sum(job.memory_mb for job in running)
        workers.append(
            WorkerState(f"worker-{number:03d}", gpu_count, free_gpus, cpu_slots, free_cpu, tuple(running),
                        memory_mb=memory_mb, free_memory_mb=free_memory, runs_code=number % 10 != 3)
        )
    return workers


def build_queue(rng: random.Random) -> list[QueuedRun]:
    runs = []
    for run_id in range(QUEUED_RUNS):
        gpus = rng.choice((0, 1, 1, 1, 2, 2, 4, 8))
        runs.append(
            QueuedRun(
                id=run_id,
                user=f"user{rng.randrange(200)}",
                team=rng.choice((None, *(f"team{t}" for t in range(8)))),
                priority=rng.choice((0, 0, 0, 1, 5)),
                gpus=gpus,
                cpu_slots=rng.choice((1, 2, 4)),
                submitted_at=NOW - rng.uniform(0, 20 * 3600),
                max_minutes=rng.choice((None, 30.0, 120.0, 600.0)),
                memory_mb=rng.choice((4, 4, 8, 16, 64, 1024)) * 1024,
                needs_isolation=rng.random() < 0.5,
                expected_minutes=rng.uniform(1, 90) if rng.random() < 0.5 else None,
            )
        )
    return runs


def build_usage(rng: random.Random) -> UsageTotals:
    return UsageTotals(
        NOW - 600,
        {f"user{u}": rng.uniform(0, 1e6) for u in range(200)},
        {f"team{t}": rng.uniform(0, 1e7) for t in range(8)},
        {f"user{u}": rng.uniform(0, 40 * 3600) for u in range(200)},
        {f"team{t}": rng.uniform(0, 400 * 3600) for t in range(8)},
    )


def build_quotas() -> Quotas:
    return Quotas(
        default=Limits(gpus=16, cpu_slots=64, memory_mb=2048 * 1024, runs=40),
        users={f"user{u}": Limits(gpus=4, runs=10, gpu_hours_per_week=30) for u in range(0, 200, 10)},
        teams={f"team{t}": Limits(gpus=48, gpu_hours_per_week=350) for t in range(8)},
    )


def main() -> None:
    rng = random.Random(7)
    workers, queue, usage = build_workers(rng), build_queue(rng), build_usage(rng)
    config = PolicyConfig(quotas=build_quotas())
    samples, cpu_samples = [], []
    for _ in range(REPEATS):
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = plan_pass(queued=queue, workers=workers, usage=usage, config=config, now=NOW)
        samples.append((time.perf_counter() - start) * 1000)
        cpu_samples.append((time.process_time() - cpu_start) * 1000)
    assert len(plan.assignments) + len(plan.pending_reasons) == QUEUED_RUNS
    assert any("quota" in reason for reason in plan.pending_reasons.values())
    median_ms = statistics.median(samples)
    print(
        json.dumps(
            {
                "benchmark": "scheduler_pass",
                "queued_runs": QUEUED_RUNS,
                "workers": WORKERS,
                "resource_dimensions": 3,
                "quotas": "users: gpus, cpus, memory, runs; teams: gpus, gpu-hours/week",
                "started": len(plan.assignments),
                "median_ms": round(median_ms, 2),
                # NOTE: CPU time of the process: on a shared machine the wall clock also counts other work
                "median_cpu_ms": round(statistics.median(cpu_samples), 2),
                "target_ms": TARGET_MS,
                "ratio_to_target": round(median_ms / TARGET_MS, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
