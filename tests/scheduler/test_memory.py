"""Host memory is placed like GPUs and CPU slots: on one worker, never oversubscribed, backfill included."""

from __future__ import annotations

import math
import random

from cluster_factories import GB, NOW, job, placed_on, plan, queued, started, worker

from scheduler.policy import Quotas, Reservation, never_fits


def test_run_goes_where_its_memory_is_free():
    workers = [worker("a", gpus=0, memory_gb=16, running=[job(90, gpus=0, memory_gb=12)]), worker("b", gpus=0, memory_gb=16)]

    result = plan([queued(1, gpus=0, memory_gb=8)], workers)

    assert placed_on(result) == {1: ("b", ())}


def test_memory_is_never_oversubscribed_within_a_pass():
    result = plan([queued(i, gpus=0, memory_gb=10) for i in (1, 2)], [worker("w1", gpus=0, memory_gb=16)])

    assert started(result) == [1]
    assert result.pending_reasons[2].startswith("behind higher-priority or fairer-share runs")


def test_run_that_must_wait_for_memory_is_told_how_much_is_free():
    workers = [worker("w1", gpus=0, memory_gb=16, running=[job(90, gpus=0, memory_gb=12, ends_in_minutes=30)])]

    result = plan([queued(1, gpus=0, memory_gb=8)], workers)

    assert result.pending_reasons[1] == (
        "waiting for 8 GB of memory on one worker; most free is 4 GB; next to start: w1 is reserved for it in about 30 min"
    )


def test_memory_shown_is_the_most_free_where_the_gpus_are():
    workers = [
        worker("gpu", gpus=4, memory_gb=16, running=[job(90, gpus=0, memory_gb=12)]),
        worker("cpu", gpus=0, memory_gb=64),
    ]

    result = plan([queued(1, gpus=2, memory_gb=8)], workers)

    assert result.pending_reasons[1].startswith("waiting for 8 GB of memory on one worker; most free is 4 GB")


def test_worker_of_unknown_memory_is_not_limited_by_memory():
    result = plan([queued(1, gpus=0, memory_gb=500)], [worker("w1", gpus=0, memory_gb=0)])

    assert placed_on(result) == {1: ("w1", ())}


def test_more_memory_than_any_worker_has_never_fits():
    workers = [worker("w1", gpus=0, memory_gb=31.5), worker("w2", gpus=2, memory_gb=16)]

    assert never_fits(queued(1, gpus=0, memory_gb=64), workers, Quotas()) == (
        "asks for 64 GB of memory; the largest worker has 31.5 GB"
    )
    assert plan([queued(1, gpus=0, memory_gb=64)], workers).pending_reasons == {
        1: "asks for 64 GB of memory; the largest worker has 31.5 GB"
    }


def test_gpus_and_memory_must_come_from_the_same_worker():
    workers = [worker("cpu", gpus=0, memory_gb=512), worker("gpu", gpus=2, memory_gb=16)]

    assert never_fits(queued(1, gpus=2, memory_gb=64), workers, Quotas()) == (
        "asks for 2 GPUs and 64 GB of memory on one worker; workers with 2 GPUs have at most 16 GB"
    )


def reserved_cluster():
    """w1 has 32 GB; a job holding 24 of them ends in 60 min."""
    return [worker("w1", gpus=0, cpu_slots=8, memory_gb=32, running=[job(90, gpus=0, memory_gb=24, ends_in_minutes=60)])]


def big_run():
    return queued(1, "ada", gpus=0, memory_gb=28, max_minutes=120)


def test_blocked_run_reserves_the_worker_until_its_memory_is_free():
    result = plan([big_run()], reserved_cluster())

    assert result.reservation == Reservation(1, "w1", NOW + 60 * 60, gpus=0, cpu_slots=1, memory_mb=28 * GB)


def test_run_that_would_take_the_reserved_memory_past_the_reservation_waits():
    result = plan([big_run(), queued(2, "bob", gpus=0, memory_gb=6)], reserved_cluster())

    assert result.assignments == ()
    assert result.pending_reasons[2] == "reserved for run 1: it starts on w1 in about 60 min and this run could still be running then"


def test_run_that_ends_before_the_reservation_backfills_its_memory():
    result = plan([big_run(), queued(2, "bob", gpus=0, memory_gb=6, max_minutes=30)], reserved_cluster())

    assert started(result) == [2]


def test_long_run_may_use_memory_the_reserved_run_will_not_need():
    result = plan([big_run(), queued(2, "bob", gpus=0, memory_gb=4)], reserved_cluster())

    assert started(result) == [2]


def memory_cluster(rng: random.Random) -> list:
    workers = []
    for n in range(3):
        memory_gb = rng.choice((24, 32, 64))
        running = [
            job(900 + 10 * n + k, gpus=0, cpu_slots=1, memory_gb=rng.choice((4, 8)),
                ends_in_minutes=rng.choice((None, 15, 30, 90)))
            for k in range(rng.randint(0, 3))
        ]
        workers.append(worker(f"w{n}", gpus=0, cpu_slots=16, running=running, memory_gb=memory_gb))
    return workers


def memory_free_from(result, workers, runs):
    """When the reserved run's memory is free once the plan's own runs hold theirs too."""
    held = result.reservation
    target = next(w for w in workers if w.name == held.worker)
    free = target.free_memory_mb
    releases = [(j.expected_end or math.inf, j.memory_mb) for j in target.running]
    for a in result.assignments:
        if a.worker == held.worker:
            run = runs[a.run_id]
            free -= run.memory_mb
            releases.append((NOW + run.max_seconds if run.max_seconds else math.inf, run.memory_mb))
    for when, memory in [(NOW, 0), *sorted(releases)]:
        free += memory
        if free >= held.memory_mb:
            return max(when, NOW)
    return math.inf


def test_random_passes_never_delay_the_reserved_runs_memory():
    rng = random.Random(5)
    checked = 0
    for _ in range(300):
        workers = memory_cluster(rng)
        runs = {
            i: queued(i, rng.choice(("ada", "bob")), gpus=0, memory_gb=rng.choice((2, 8, 24, 48)),
                      max_minutes=rng.choice((None, 10, 60)))
            for i in range(1, 20)
        }

        result = plan(list(runs.values()), workers)

        for a in result.assignments:
            assert a.worker in {w.name for w in workers}
        if result.reservation is not None and result.reservation.start_at is not None:
            assert memory_free_from(result, workers, runs) <= result.reservation.start_at
            checked += 1
    assert checked > 30
