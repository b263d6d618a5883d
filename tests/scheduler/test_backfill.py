"""Backfill (EASY): small runs start while a big one waits, but never delay its reservation."""

from __future__ import annotations

import math
import random

from cluster_factories import NOW, job, placed_on, plan, queued, random_cluster, random_queue, started, worker

from scheduler.policy import Reservation


def busy_cluster():
    """w1 frees its 6 busy GPUs in 60 min, w2 its 7 in 90 min: an 8-GPU gang fits nowhere now."""
    return [
        worker("w1", gpus=8, running=[job(90, gpus=6, ends_in_minutes=60)]),
        worker("w2", gpus=8, running=[job(91, gpus=7, ends_in_minutes=90)]),
    ]


def big_run():
    return queued(1, "ada", gpus=8, max_minutes=120)


def test_first_blocked_run_reserves_the_worker_where_it_can_start_soonest():
    result = plan([big_run()], busy_cluster())

    assert result.reservation == Reservation(1, "w1", NOW + 60 * 60, gpus=8, cpu_slots=1)
    assert result.pending_reasons[1] == (
        "waiting for 8 GPUs on one worker; largest free block is 2; next to start: w1 is reserved for it in about 60 min"
    )


def test_run_that_ends_before_the_reservation_backfills_the_reserved_worker():
    result = plan([big_run(), queued(2, "bob", gpus=2, max_minutes=45)], busy_cluster())

    assert placed_on(result) == {2: ("w1", (6, 7))}


def test_run_that_could_outlast_the_reservation_may_not_take_the_reserved_gpus():
    result = plan([big_run(), queued(2, "bob", gpus=2, max_minutes=90)], busy_cluster())

    assert result.assignments == ()
    assert result.pending_reasons[2] == (
        "reserved for run 1: it starts on w1 in about 60 min and this run could still be running then"
    )


def test_run_without_a_time_limit_is_never_short_enough_to_backfill():
    result = plan([big_run(), queued(2, "bob", gpus=2)], busy_cluster())

    assert result.pending_reasons[2].startswith("reserved for run 1")


def test_long_run_may_start_on_another_worker():
    result = plan([big_run(), queued(2, "bob", gpus=1, max_minutes=600)], busy_cluster())

    assert placed_on(result) == {2: ("w2", (7,))}


def test_long_run_may_use_room_the_reserved_run_will_not_need():
    workers = [worker("w1", gpus=8, running=[job(90, "zed", gpus=4, ends_in_minutes=60)])]
    runs = [queued(1, "ada", gpus=6), queued(2, "bob", gpus=2), queued(3, "cat", gpus=1)]

    result = plan(runs, workers)

    assert result.reservation is not None and result.reservation.run_id == 1
    assert started(result) == [2]
    assert result.pending_reasons[3].startswith("reserved for run 1")


def test_only_the_first_blocked_run_holds_a_reservation():
    runs = [big_run(), queued(2, "bob", gpus=8, max_minutes=120)]

    result = plan(runs, busy_cluster())

    assert result.reservation is not None and result.reservation.run_id == 1
    assert result.pending_reasons[2] == "waiting for 8 GPUs on one worker; largest free block is 2"


def test_worker_whose_jobs_have_no_time_limit_is_drained_for_the_reserved_run():
    workers = [worker("w1", gpus=4, running=[job(90, gpus=3)])]

    result = plan([queued(1, "ada", gpus=4), queued(2, "bob", gpus=1, max_minutes=5)], workers)

    assert result.reservation == Reservation(1, "w1", None, gpus=4, cpu_slots=1)
    assert result.assignments == ()
    assert result.pending_reasons[1].endswith("next to start: w1 is kept for it as its jobs finish")
    assert result.pending_reasons[2] == "reserved for run 1: w1 is kept for it"


def test_runs_started_earlier_in_the_pass_count_when_timing_the_reservation():
    workers = [worker("w1", gpus=4)]
    runs = [
        queued(1, "ada", gpus=2, max_minutes=30),
        queued(2, "bob", gpus=4, max_minutes=60),
        queued(3, "cat", gpus=2, max_minutes=20),
    ]

    result = plan(runs, workers)

    assert result.reservation == Reservation(2, "w1", NOW + 30 * 60, gpus=4, cpu_slots=1)
    assert started(result) == [1, 3]


def test_backfill_never_uses_more_than_the_free_gpus():
    result = plan([big_run(), queued(2, "bob", gpus=3, max_minutes=10)], busy_cluster())

    assert result.assignments == ()
    assert result.pending_reasons[2] == "waiting for 3 GPUs on one worker; largest free block is 2"


def test_job_past_its_expected_end_is_taken_to_end_now():
    workers = [worker("w1", gpus=4, running=[job(90, gpus=4, ends_in_minutes=-5)])]

    result = plan([queued(1, gpus=4)], workers)

    assert result.reservation is not None and result.reservation.start_at == NOW


def earliest_start_after(result, workers, runs):
    """When the reserved run could start once the plan's own runs hold their GPUs too."""
    held = result.reservation
    target = next(w for w in workers if w.name == held.worker)
    free_gpus, free_cpu = len(target.free_gpu_indices), target.free_cpu_slots
    releases = [(j.expected_end or math.inf, j.gpus, j.cpu_slots) for j in target.running]
    for a in result.assignments:
        if a.worker == held.worker:
            run = runs[a.run_id]
            free_gpus, free_cpu = free_gpus - run.gpus, free_cpu - run.cpu_slots
            releases.append((NOW + run.max_seconds if run.max_seconds else math.inf, run.gpus, run.cpu_slots))
    for when, gpus, cpu_slots in [(NOW, 0, 0), *sorted(releases)]:
        free_gpus, free_cpu = free_gpus + gpus, free_cpu + cpu_slots
        if free_gpus >= held.gpus and free_cpu >= held.cpu_slots:
            return max(when, NOW)
    return math.inf


def test_random_passes_never_delay_the_reserved_run():
    rng = random.Random(8)
    checked = 0
    for _ in range(300):
        workers = random_cluster(rng, size=3)
        runs = {r.id: r for r in random_queue(rng, 25)}

        result = plan(list(runs.values()), workers)

        if result.reservation is not None and result.reservation.start_at is not None:
            assert earliest_start_after(result, workers, runs) <= result.reservation.start_at
            checked += 1
    assert checked > 30
