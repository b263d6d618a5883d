"""The policy driven over simulated days: fairness, priorities, whole gangs, no starvation.

The simulator itself asserts, on every pass, that each gang is whole and on one worker,
that no GPU or CPU slot is handed out twice, that quotas hold and that every run left
queued has a reason.
"""

from __future__ import annotations

import random

import pytest
from simulator import SimJob, Simulator, SimWorker

from scheduler.policy import Limits, PolicyConfig, Quotas

HOUR = 3600.0
CLUSTER = [SimWorker(f"gpu{n}", gpu_count=8, cpu_slots=32) for n in range(4)] + [SimWorker("cpu0", 0, 16)]


def jobs_for(
    user: str, first_id: int, count: int, gpu_choices: tuple[int, ...], rng: random.Random
) -> list[SimJob]:
    jobs = []
    for n in range(count):
        max_minutes = rng.choice((30.0, 60.0, 120.0, 240.0))
        jobs.append(
            SimJob(
                id=first_id + n,
                user=user,
                gpus=rng.choice(gpu_choices),
                minutes=max_minutes * rng.uniform(0.3, 1.0),
                max_minutes=max_minutes,
                priority=rng.choice((0, 1, 2)),
                cpu_slots=rng.choice((1, 2)),
            )
        )
    return jobs


@pytest.fixture(scope="module")
def two_users_thousand_runs_each() -> Simulator:
    """ada submits small gangs, bob big ones; each keeps 20 runs queued until their 1,000 are in."""
    rng = random.Random(2024)
    config = PolicyConfig(
        half_life_seconds=12 * HOUR, quotas=Quotas(default=Limits(gpus=24)), starvation_after_seconds=None
    )
    sim = Simulator(CLUSTER, config)
    sim.feed("ada", jobs_for("ada", 1, 1000, (1, 1, 2, 2, 4), rng), backlog=20)
    sim.feed("bob", jobs_for("bob", 5001, 1000, (2, 4, 4, 8), rng), backlog=20)
    sim.run()
    return sim


def test_two_busy_users_get_gpu_seconds_within_ten_percent_of_equal(two_users_thousand_runs_each):
    sim = two_users_thousand_runs_each
    contended_until = min(sim.drained_at.values())

    used = sim.gpu_seconds_by_user(until=contended_until)

    assert len(sim.started) == 2000
    assert contended_until > 24 * HOUR
    assert min(used.values()) / max(used.values()) >= 0.9, used


def test_the_cluster_stays_busy_while_both_users_wait(two_users_thousand_runs_each):
    sim = two_users_thousand_runs_each
    contended_until = min(sim.drained_at.values())

    used = sum(sim.gpu_seconds_by_user(until=contended_until).values())

    assert used / (32 * contended_until) >= 0.8


def test_a_users_higher_priority_run_never_waits_while_a_lower_one_of_the_same_shape_starts(
    two_users_thousand_runs_each,
):
    sim = two_users_thousand_runs_each
    records = sorted(sim.started.values(), key=lambda r: r.started_at)
    for record in records:
        run = record.run
        for other in records:
            same_shape = (other.run.user, other.run.gpus, other.run.cpu_slots, other.run.max_minutes) == (
                run.user,
                run.gpus,
                run.cpu_slots,
                run.max_minutes,
            )
            waiting_then = other.run.submitted_at <= record.started_at < other.started_at
            if same_shape and waiting_then:
                assert other.run.priority <= run.priority, (
                    f"run {run.id} started before higher-priority run {other.run.id}"
                )


def flood_of_small_runs(user: str, first_id: int, count: int, *, priority: int = 0) -> list[SimJob]:
    rng = random.Random(first_id)
    return [
        SimJob(first_id + n, user, gpus=1, minutes=rng.uniform(10, 30), max_minutes=30.0, priority=priority)
        for n in range(count)
    ]


def test_backfill_never_starves_a_big_gang_behind_another_users_small_runs():
    sim = Simulator([SimWorker("w1", 4, 16), SimWorker("w2", 4, 16)], PolicyConfig())
    sim.feed("bob", flood_of_small_runs("bob", 1, 600), backlog=12)
    big = SimJob(9000, "ada", gpus=4, minutes=60, max_minutes=60, submit_at=20 * 60)
    sim.submit_at([big])

    sim.run()

    waited = sim.started[big.id].started_at - big.submit_at
    assert waited <= 30 * 60, "the reservation bounds the wait by the longest small run's max_minutes"
    assert sim.started[big.id].started_at <= sim.first_promised_start[big.id], (
        "backfill delayed the reserved run"
    )
    assert sim.drained_at["bob"] > sim.started[big.id].ended_at, "the small runs kept arriving the whole time"


def test_aging_bounds_the_wait_of_a_low_priority_gang_behind_its_own_users_flood():
    def simulate(starvation_after_seconds: float | None) -> tuple[Simulator, SimJob]:
        sim = Simulator(
            [SimWorker("w1", 4, 16), SimWorker("w2", 4, 16)],
            PolicyConfig(starvation_after_seconds=starvation_after_seconds),
        )
        sim.feed("ada", flood_of_small_runs("ada", 1, 1000, priority=5), backlog=12)
        big = SimJob(9000, "ada", gpus=4, minutes=60, max_minutes=60, priority=0, submit_at=10 * 60)
        sim.submit_at([big])
        sim.run()
        return sim, big

    with_aging, big = simulate(2 * HOUR)
    without_aging, _ = simulate(None)

    assert with_aging.started[big.id].started_at - big.submit_at <= 2 * HOUR + 30 * 60
    assert without_aging.started[big.id].started_at >= without_aging.drained_at["ada"] - 30 * 60
