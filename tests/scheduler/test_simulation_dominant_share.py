"""Two users x 1,000 mixed CPU and GPU runs: dominant-resource fairness over simulated days."""

from __future__ import annotations

import random

import pytest
from simulator import SimJob, Simulator, SimWorker

from scheduler.policy import PolicyConfig

HOUR = 3600.0
GB = 1024
CLUSTER = [
    SimWorker("gpu0", 4, 16, memory_mb=128 * GB),
    SimWorker("gpu1", 4, 16, memory_mb=128 * GB),
    SimWorker("cpu0", 0, 32, memory_mb=64 * GB),
    SimWorker("cpu1", 0, 32, memory_mb=64 * GB),
]


def mixed_jobs(user: str, first_id: int, count: int, rng: random.Random, gpu_fraction: float) -> list[SimJob]:
    """GPU runs (1-2 GPUs, a few CPU slots) and CPU-only runs (4-16 slots, some memory-heavy)."""
    jobs = []
    for n in range(count):
        max_minutes = rng.choice((20.0, 40.0, 60.0))
        if rng.random() < gpu_fraction:
            shape = {"gpus": rng.choice((1, 1, 2)), "cpu_slots": rng.choice((1, 2, 4)), "memory_mb": 8 * GB}
        else:
            shape = {"gpus": 0, "cpu_slots": rng.choice((4, 8, 16)), "memory_mb": rng.choice((4, 16, 48)) * GB}
        jobs.append(SimJob(id=first_id + n, user=user, minutes=max_minutes * rng.uniform(0.3, 1.0),
                           max_minutes=max_minutes, **shape))
    return jobs


@pytest.fixture(scope="module")
def two_users_mixed() -> Simulator:
    """ada mostly GPU runs, bob mostly CPU runs; each keeps 20 queued until their 1,000 are in."""
    rng = random.Random(11)
    sim = Simulator(CLUSTER, PolicyConfig(half_life_seconds=6 * HOUR, starvation_after_seconds=None))
    sim.feed("ada", mixed_jobs("ada", 1, 1000, rng, gpu_fraction=0.7), backlog=20)
    sim.feed("bob", mixed_jobs("bob", 5001, 1000, rng, gpu_fraction=0.3), backlog=20)
    sim.run()
    return sim


def test_two_users_of_mixed_runs_stay_within_five_percent_of_equal_dominant_share(two_users_mixed):
    sim = two_users_mixed
    contended_until = min(sim.drained_at.values())

    used = sim.share_seconds_by_user(until=contended_until)

    assert len(sim.started) == 2000
    assert contended_until > 24 * HOUR
    assert min(used.values()) / max(used.values()) >= 0.95, used


def test_gpus_and_cpu_slots_stay_busy_while_both_users_wait(two_users_mixed):
    sim = two_users_mixed
    contended_until = min(sim.drained_at.values())
    gpu_seconds = cpu_seconds = 0.0
    for record in sim.started.values():
        seconds = max(0.0, min(record.ended_at, contended_until) - record.started_at)
        gpu_seconds += seconds * record.run.gpus
        cpu_seconds += seconds * record.run.cpu_slots

    assert gpu_seconds / (8 * contended_until) >= 0.9  # measured 0.97
    assert cpu_seconds / (96 * contended_until) >= 0.65  # measured 0.77: CPU-only runs are bigger blocks
