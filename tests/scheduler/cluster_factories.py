"""Small builders for queued runs, workers and policy passes in the scheduler tests."""

from __future__ import annotations

import random
from collections.abc import Sequence

from scheduler.policy import (
    Plan,
    PolicyConfig,
    QueuedRun,
    RunningRun,
    UsageTotals,
    WorkerState,
    plan_pass,
)

NOW = 1_000_000.0
MINUTE = 60.0
GB = 1024  # MB


def queued(
    run_id: int,
    user: str = "ada",
    *,
    gpus: int = 1,
    cpu_slots: int = 1,
    team: str | None = None,
    priority: int = 0,
    submitted_at: float | None = None,
    max_minutes: float | None = None,
    memory_gb: float = 0,
    code: bool = False,
) -> QueuedRun:
    """A queued run; by default submitted `run_id` seconds before NOW, so ids give age order."""
    when = NOW - 1000 + run_id if submitted_at is None else submitted_at
    return QueuedRun(run_id, user, team, priority, gpus, cpu_slots, when, max_minutes, round(memory_gb * GB), code)


def job(
    run_id: int,
    user: str = "bob",
    *,
    gpus: int = 1,
    cpu_slots: int = 1,
    team: str | None = None,
    ends_in_minutes: float | None = None,
    memory_gb: float = 0,
) -> RunningRun:
    """A running job; `ends_in_minutes` None means it has no time limit."""
    ends = None if ends_in_minutes is None else NOW + ends_in_minutes * MINUTE
    return RunningRun(run_id, user, team, gpus, cpu_slots, ends, round(memory_gb * GB))


def worker(
    name: str,
    gpus: int = 8,
    cpu_slots: int = 32,
    running: Sequence[RunningRun] = (),
    *,
    memory_gb: float = 0,
    runs_code: bool = True,
    draining: bool = False,
) -> WorkerState:
    """A worker whose running jobs hold its lowest GPU indices and some of its CPU slots and memory.

    `memory_gb` 0 means unknown (not limited); workers run code unless `runs_code=False`.
    """
    busy_gpus = sum(j.gpus for j in running)
    busy_cpu = sum(j.cpu_slots for j in running)
    memory_mb = round(memory_gb * GB)
    busy_memory = sum(j.memory_mb for j in running)
    assert busy_gpus <= gpus and busy_cpu <= cpu_slots and (not memory_mb or busy_memory <= memory_mb)
    return WorkerState(
        name, gpus, tuple(range(busy_gpus, gpus)), cpu_slots, cpu_slots - busy_cpu, tuple(running),
        memory_mb=memory_mb, free_memory_mb=max(0, memory_mb - busy_memory), runs_code=runs_code, draining=draining,
    )


def plan(
    runs: Sequence[QueuedRun],
    workers: Sequence[WorkerState],
    *,
    usage: UsageTotals | None = None,
    config: PolicyConfig | None = None,
) -> Plan:
    """One policy pass at NOW."""
    return plan_pass(
        queued=runs,
        workers=workers,
        usage=usage or UsageTotals(NOW),
        config=config or PolicyConfig(),
        now=NOW,
    )


def started(result: Plan) -> list[int]:
    """Ids of the runs the plan starts, in the order it decided them."""
    return [assignment.run_id for assignment in result.assignments]


def placed_on(result: Plan) -> dict[int, tuple[str, tuple[int, ...]]]:
    return {a.run_id: (a.worker, a.gpu_indices) for a in result.assignments}


def random_cluster(rng: random.Random, size: int = 6) -> list[WorkerState]:
    """Workers of mixed sizes, some partly busy with jobs that end at known or unknown times."""
    workers = []
    for n in range(size):
        gpus = rng.choice((0, 2, 4, 8))
        running = []
        for k in range(rng.randint(0, 3)):
            running.append(
                job(
                    900 + 10 * n + k,
                    rng.choice(("ada", "bob")),
                    gpus=rng.randint(0, gpus // 3),
                    cpu_slots=rng.randint(1, 4),
                    ends_in_minutes=rng.choice((None, 15, 30, 90)),
                )
            )
        workers.append(worker(f"w{n}", gpus=gpus, cpu_slots=16, running=running))
    return workers


def random_queue(rng: random.Random, size: int) -> list[QueuedRun]:
    """Runs from four users in two teams (and none), of every shape, some that never fit."""
    return [
        queued(
            i,
            rng.choice(("ada", "bob", "cat", "dan")),
            team=rng.choice((None, "red", "blue")),
            gpus=rng.choice((0, 1, 2, 4, 8, 16)),
            cpu_slots=rng.choice((1, 2, 8)),
            priority=rng.choice((0, 1)),
            max_minutes=rng.choice((None, 10, 60)),
        )
        for i in range(1, size + 1)
    ]
