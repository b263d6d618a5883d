"""Fair share still holds over simulated hours when memory and isolation constrain placement.

The simulator asserts on every pass that memory is never oversubscribed and that code runs
only go to workers that run code.
"""

from __future__ import annotations

import random

from simulator import SimJob, Simulator, SimWorker

from scheduler.policy import PolicyConfig

HOUR = 3600.0
GB = 1024
CLUSTER = [
    SimWorker("sandboxed0", 8, 32, memory_mb=64 * GB),
    SimWorker("sandboxed1", 8, 32, memory_mb=64 * GB),
    SimWorker("sandboxed2", 8, 32, memory_mb=128 * GB),
    SimWorker("open", 8, 32, memory_mb=64 * GB, runs_code=False),
]


def mixed_jobs(user: str, first_id: int, count: int, rng: random.Random) -> list[SimJob]:
    """Half user code, half recipes, of every size in GPUs and memory."""
    jobs = []
    for n in range(count):
        max_minutes = rng.choice((30.0, 60.0, 120.0))
        jobs.append(
            SimJob(
                id=first_id + n,
                user=user,
                gpus=rng.choice((1, 2, 4)),
                minutes=max_minutes * rng.uniform(0.3, 1.0),
                max_minutes=max_minutes,
                memory_mb=rng.choice((4, 8, 16, 48)) * GB,
                code=rng.random() < 0.5,
            )
        )
    return jobs


def test_two_users_of_code_and_recipes_on_constrained_workers_share_within_ten_percent():
    rng = random.Random(7)
    sim = Simulator(CLUSTER, PolicyConfig(half_life_seconds=12 * HOUR, starvation_after_seconds=None))
    sim.feed("ada", mixed_jobs("ada", 1, 400, rng), backlog=20)
    sim.feed("bob", mixed_jobs("bob", 5001, 400, rng), backlog=20)

    sim.run()

    contended_until = min(sim.drained_at.values())
    used = sim.gpu_seconds_by_user(until=contended_until)
    assert len(sim.started) == 800
    assert contended_until > 12 * HOUR
    assert min(used.values()) / max(used.values()) >= 0.9, used
    code_on = {record.worker for record in sim.started.values() if record.run.needs_isolation}
    assert "open" not in code_on and code_on
