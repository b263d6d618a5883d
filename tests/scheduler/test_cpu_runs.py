"""CPU-only runs (gpus=0) take CPU slots, preferably on machines without GPUs."""

from __future__ import annotations

from cluster_factories import job, placed_on, plan, queued, worker


def test_cpu_only_run_takes_cpu_slots_and_no_gpus():
    result = plan([queued(1, gpus=0, cpu_slots=4)], [worker("cpu1", gpus=0, cpu_slots=16)])

    assert placed_on(result) == {1: ("cpu1", ())}
    assert result.assignments[0].cpu_slots == 4


def test_cpu_only_run_prefers_a_cpu_only_worker_over_a_gpu_worker():
    workers = [worker("a-gpu", gpus=8, cpu_slots=64), worker("z-cpu", gpus=0, cpu_slots=8)]

    result = plan([queued(1, gpus=0, cpu_slots=4)], workers)

    assert placed_on(result) == {1: ("z-cpu", ())}


def test_cpu_only_run_uses_spare_slots_on_a_gpu_worker_when_cpu_workers_are_full():
    workers = [
        worker("gpu", gpus=8, cpu_slots=16),
        worker("cpu", gpus=0, cpu_slots=4, running=[job(90, gpus=0, cpu_slots=4)]),
    ]

    result = plan([queued(1, gpus=0, cpu_slots=2)], workers)

    assert placed_on(result) == {1: ("gpu", ())}


def test_cpu_slots_are_never_oversubscribed():
    runs = [queued(i, gpus=0, cpu_slots=3) for i in range(1, 5)]

    result = plan(runs, [worker("cpu", gpus=0, cpu_slots=10)])

    assert [a.run_id for a in result.assignments] == [1, 2, 3]
    assert result.pending_reasons[4].startswith("behind higher-priority or fairer-share runs")


def test_cpu_run_waiting_for_slots_says_how_many_are_free():
    cpu_worker = worker("cpu", gpus=0, cpu_slots=8, running=[job(90, gpus=0, cpu_slots=7)])

    result = plan([queued(1, gpus=0, cpu_slots=4)], [cpu_worker])

    assert result.pending_reasons[1].startswith(
        "waiting for 4 CPU slots on one worker; most free on one worker is 1"
    )


def test_cpu_runs_start_while_every_gpu_is_busy():
    workers = [worker("gpu", gpus=2, cpu_slots=8, running=[job(90, gpus=2, cpu_slots=2, ends_in_minutes=30)])]

    result = plan([queued(1, gpus=1, max_minutes=60), queued(2, gpus=0, cpu_slots=2)], workers)

    assert placed_on(result) == {2: ("gpu", ())}
    assert 1 in result.pending_reasons
