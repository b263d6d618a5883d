"""Gang placement: a run gets all of its GPUs on one worker at once, or waits."""

from __future__ import annotations

import random

from cluster_factories import job, placed_on, plan, queued, random_cluster, random_queue, started, worker


def test_run_gets_all_its_gpus_on_one_worker():
    result = plan([queued(1, gpus=4)], [worker("w1", gpus=8)])

    assert placed_on(result) == {1: ("w1", (0, 1, 2, 3))}


def test_gang_is_never_split_across_workers_even_when_enough_gpus_are_free_in_total():
    workers = [
        worker("w1", gpus=4, running=[job(90, gpus=2)]),
        worker("w2", gpus=4, running=[job(91, gpus=2)]),
    ]

    result = plan([queued(1, gpus=4)], workers)

    assert result.assignments == ()
    assert result.pending_reasons[1].startswith("waiting for 4 GPUs on one worker; largest free block is 2")


def test_gang_takes_the_free_gpus_not_the_busy_ones():
    result = plan([queued(1, gpus=2)], [worker("w1", gpus=4, running=[job(90, gpus=2)])])

    assert placed_on(result) == {1: ("w1", (2, 3))}


def test_best_fit_uses_the_smallest_free_block_that_holds_the_gang():
    workers = [worker("big", gpus=8), worker("small", gpus=8, running=[job(90, gpus=6)])]

    result = plan([queued(1, gpus=2), queued(2, gpus=8)], workers)

    assert placed_on(result) == {1: ("small", (6, 7)), 2: ("big", tuple(range(8)))}


def test_runs_placed_in_one_pass_never_share_a_gpu():
    runs = [queued(i, gpus=g) for i, g in enumerate([3, 2, 2, 1], start=1)]

    result = plan(runs, [worker("w1", gpus=8)])

    indices = [i for a in result.assignments for i in a.gpu_indices]
    assert started(result) == [1, 2, 3, 4]
    assert sorted(indices) == list(range(8))


def test_gang_also_needs_its_cpu_slots_on_the_same_worker():
    workers = [worker("gpus-no-cpu", gpus=4, cpu_slots=2), worker("cpu-no-gpus", gpus=0, cpu_slots=64)]

    result = plan([queued(1, gpus=2, cpu_slots=4)], workers)

    assert result.assignments == ()
    assert result.pending_reasons[1].startswith("asks for 2 GPUs and 4 CPU slots on one worker")


def test_random_passes_never_split_a_gang_or_hand_out_anything_twice():
    rng = random.Random(5)
    for _ in range(200):
        workers = {w.name: w for w in random_cluster(rng)}
        runs = {r.id: r for r in random_queue(rng, 30)}

        result = plan(list(runs.values()), list(workers.values()))

        taken_gpus: dict[str, set[int]] = {name: set() for name in workers}
        taken_cpu = dict.fromkeys(workers, 0)
        for a in result.assignments:
            run, free = runs[a.run_id], workers[a.worker]
            assert len(set(a.gpu_indices)) == len(a.gpu_indices) == run.gpus
            assert set(a.gpu_indices) <= set(free.free_gpu_indices) - taken_gpus[a.worker]
            taken_gpus[a.worker] |= set(a.gpu_indices)
            taken_cpu[a.worker] += a.cpu_slots
            assert a.cpu_slots == run.cpu_slots and taken_cpu[a.worker] <= free.free_cpu_slots
