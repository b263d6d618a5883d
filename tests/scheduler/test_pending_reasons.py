"""Every run left queued gets a reason a person can act on; passes are deterministic."""

from __future__ import annotations

import random

from cluster_factories import job, plan, queued, random_cluster, random_queue, worker

from scheduler.policy import Limits, PolicyConfig, Quotas, UsageTotals


def test_every_queued_run_is_either_started_or_given_a_reason():
    rng = random.Random(3)
    config = PolicyConfig(quotas=Quotas(default=Limits(gpus=8, runs=6), teams={"red": Limits(cpu_slots=10)}))
    for _ in range(50):
        runs = random_queue(rng, 40)

        result = plan(runs, random_cluster(rng), config=config)

        placed = {a.run_id for a in result.assignments}
        assert placed.isdisjoint(result.pending_reasons)
        assert placed | set(result.pending_reasons) == {r.id for r in runs}
        assert all(result.pending_reasons.values())


def test_run_whose_room_went_to_runs_ahead_of_it_is_told_so():
    result = plan([queued(1, "ada", gpus=2), queued(2, "bob", gpus=2)], [worker("w1", gpus=2)])

    assert result.pending_reasons[2].startswith("behind higher-priority or fairer-share runs")


def test_run_that_never_fitted_is_told_what_is_free():
    result = plan([queued(1, gpus=4)], [worker("w1", gpus=4, running=[job(90, gpus=1)])])

    assert result.pending_reasons[1].startswith("waiting for 4 GPUs on one worker; largest free block is 3")


def test_gpu_run_short_of_cpu_slots_is_told_so():
    workers = [worker("w1", gpus=4, cpu_slots=8, running=[job(90, gpus=0, cpu_slots=7)])]

    result = plan([queued(1, gpus=2, cpu_slots=4)], workers)

    assert result.pending_reasons[1].startswith(
        "waiting for 2 GPUs and 4 CPU slots on one worker; no worker with 2 free GPUs has 4 free CPU slots"
    )


def test_plan_does_not_depend_on_the_order_runs_and_workers_are_given_in():
    rng = random.Random(11)
    runs, workers = random_queue(rng, 200), random_cluster(rng)
    usage = UsageTotals(0.0, {"ada": 50.0, "cat": 50.0}, {"red": 10.0})
    expected = plan(runs, workers, usage=usage)

    for _ in range(5):
        rng.shuffle(runs)
        rng.shuffle(workers)
        assert plan(runs, workers, usage=usage) == expected
