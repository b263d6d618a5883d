"""Fair share by dominant-resource share: CPU-only, memory-heavy, GPU-only and mixed clusters."""

from __future__ import annotations

import pytest
from cluster_factories import GB, job, plan, queued, started, worker
from simulator import SimJob, Simulator, SimWorker

from scheduler.policy import ClusterCapacity, PolicyConfig


def test_dominant_share_is_the_largest_fraction_of_any_resource():
    capacity = ClusterCapacity(gpus=4, cpu_slots=32, memory_mb=64 * GB)

    assert capacity.dominant_share(1, 1, 1 * GB) == 0.25  # GPUs dominate
    assert capacity.dominant_share(0, 16, 1 * GB) == 0.5  # CPU slots dominate
    assert capacity.dominant_share(0, 1, 48 * GB) == 0.75  # memory dominates
    assert capacity.dominant_share(8, 1, 0) == 1.0  # never more than the whole cluster


def test_a_resource_the_cluster_lacks_is_left_out():
    capacity = ClusterCapacity.of([worker("cpu1", gpus=0, cpu_slots=2), worker("cpu2", gpus=0, cpu_slots=2)])

    assert capacity == ClusterCapacity(gpus=0, cpu_slots=4, memory_mb=0)
    assert capacity.dominant_share(0, 1, 32 * GB) == 0.25


def test_capacity_counts_draining_workers():
    workers = [worker("a", gpus=2, cpu_slots=8, memory_gb=16), worker("b", gpus=1, cpu_slots=4, draining=True)]

    assert ClusterCapacity.of(workers) == ClusterCapacity(gpus=3, cpu_slots=12, memory_mb=16 * GB)


@pytest.mark.parametrize(("gpus", "cluster"), [
    (0, SimWorker("cpu", gpu_count=0, cpu_slots=2)),  # CPU-only: once first come, first served
    (1, SimWorker("gpu", gpu_count=2, cpu_slots=32)),  # GPU-only: the ordering GPU-seconds gave
])
def test_second_user_starts_within_the_first_four_starts(gpus, cluster):
    alice = [SimJob(i, "alice", gpus=gpus, minutes=1, max_minutes=2, submit_at=0.0) for i in range(1, 21)]
    bob = [SimJob(i, "bob", gpus=gpus, minutes=1, max_minutes=2, submit_at=1.0) for i in range(21, 26)]
    sim = Simulator([cluster], PolicyConfig())
    sim.submit_at(alice + bob)

    sim.run()

    order = list(sim.started)
    assert len(order) == 25
    assert min(order.index(run_id) for run_id in range(21, 26)) < 4, order
    first_ten_users = [sim.started[run_id].run.user for run_id in order[:10]]
    assert first_ten_users.count("bob") >= 4  # bob's 5 runs are not left for last


def test_memory_heavy_running_job_counts_against_its_user():
    cluster = worker(
        "w1", gpus=0, cpu_slots=3, memory_gb=64,
        running=[job(90, "ada", gpus=0, memory_gb=32, ends_in_minutes=30),
                 job(91, "bob", gpus=0, memory_gb=4, ends_in_minutes=30)],
    )

    result = plan([queued(1, "ada", gpus=0, memory_gb=4), queued(2, "bob", gpus=0, memory_gb=4)], [cluster])

    assert started(result) == [2]  # ada holds half the memory, bob a sixteenth: bob is further behind


def test_mixed_cluster_compares_a_gpu_share_with_a_cpu_share():
    cluster = worker(
        "w1", gpus=4, cpu_slots=20,
        running=[job(90, "ada", gpus=1, cpu_slots=1, ends_in_minutes=30),  # a quarter of the GPUs
                 job(91, "bob", gpus=0, cpu_slots=18, ends_in_minutes=30)],  # 90 % of the CPU slots
    )

    result = plan([queued(1, "bob", gpus=0), queued(2, "ada", gpus=1)], [cluster])

    assert started(result) == [2]


def test_equal_dominant_shares_alternate_between_a_gpu_user_and_a_cpu_user():
    runs = [queued(i, "ada", gpus=1, cpu_slots=1, max_minutes=60) for i in range(1, 4)] + [
        queued(i, "bob", gpus=0, cpu_slots=8, max_minutes=60) for i in range(4, 7)
    ]

    result = plan(runs, [worker("w1", gpus=4, cpu_slots=32)])  # 1 GPU and 8 CPU slots: a quarter each

    assert started(result)[:4] == [1, 4, 2, 5]
