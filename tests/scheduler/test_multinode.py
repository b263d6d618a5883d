"""Multi-node runs: a gang of N workers, each with one node's share free, placed all at once or not at all."""

from __future__ import annotations

import dataclasses

from cluster_factories import NOW, job, plan, queued, worker

from scheduler.policy import Limits, PolicyConfig, Quotas, never_fits


def gang(run_id: int, nodes: int, *, gpus: int = 0, cpu_slots: int = 1, user: str = "ada", max_minutes=None):
    """A queued multi-node run asking `gpus` and `cpu_slots` on EACH of `nodes` workers (the policy sees totals)."""
    run = queued(run_id, user, gpus=gpus * nodes, cpu_slots=cpu_slots * nodes, max_minutes=max_minutes)
    return dataclasses.replace(run, nodes=nodes)


def nodes_of(result, run_id: int) -> list[tuple[int, str, tuple[int, ...], int]]:
    return sorted((a.node_rank, a.worker, a.gpu_indices, a.cpu_slots) for a in result.assignments if a.run_id == run_id)


def test_a_two_node_cpu_run_gets_one_assignment_per_node_on_two_workers():
    result = plan([gang(1, 2, cpu_slots=4)], [worker("w1", gpus=0, cpu_slots=4), worker("w2", gpus=0, cpu_slots=4)])

    assert nodes_of(result, 1) == [(0, "w1", (), 4), (1, "w2", (), 4)]


def test_gpu_nodes_get_their_own_gpus_on_each_worker():
    workers = [worker("w1", gpus=8, running=[job(90, gpus=4)]), worker("w2", gpus=4)]

    result = plan([gang(1, 2, gpus=4)], workers)

    assert [(w, gpus) for _, w, gpus, _ in nodes_of(result, 1)] == [("w1", (4, 5, 6, 7)), ("w2", (0, 1, 2, 3))]


def test_a_gang_is_all_or_nothing_and_says_how_many_workers_have_room():
    workers = [worker("w1", gpus=0, cpu_slots=4), worker("w2", gpus=0, cpu_slots=4, running=[job(90, cpu_slots=2, gpus=0)])]

    result = plan([gang(1, 2, cpu_slots=4)], workers)

    assert result.assignments == ()
    assert result.pending_reasons[1].startswith("waiting for 2 workers with 4 free CPUs each (1 available)")


def test_two_nodes_never_share_a_worker_even_when_one_worker_could_hold_both():
    workers = [worker("big", gpus=0, cpu_slots=64), worker("busy", gpus=0, cpu_slots=2, running=[job(90, gpus=0, cpu_slots=2)])]

    result = plan([gang(1, 2, cpu_slots=2)], workers)

    assert result.assignments == ()
    assert "(1 available)" in result.pending_reasons[1]
    assert never_fits(gang(1, 2, cpu_slots=2), workers[:1], Quotas()) == (
        "asks for 2 nodes with 2 CPUs each; only 1 worker is that big")


def test_a_gang_wider_than_the_cluster_never_fits():
    workers = [worker("w1", gpus=4), worker("w2", gpus=4), worker("w3", gpus=2)]
    run = gang(1, 3, gpus=4)

    assert never_fits(run, workers, Quotas()) == "asks for 3 nodes with 4 GPUs each; only 2 workers are that big"
    assert plan([run], workers).pending_reasons[1] == never_fits(run, workers, Quotas())


def test_the_gang_counts_whole_against_the_users_gpu_quota():
    config = PolicyConfig(quotas=Quotas(default=Limits(gpus=6)))

    result = plan([gang(1, 2, gpus=4)], [worker("w1", gpus=4), worker("w2", gpus=4)], config=config)

    assert result.assignments == ()
    assert "8 GPUs" in result.pending_reasons[1] and "6" in result.pending_reasons[1]


def test_a_placed_gang_is_charged_whole_in_fair_share():
    # ada's 2-node gang takes half the cluster and is charged for half; after bob's first run (a quarter)
    # bob is still behind ada, so his second run goes before ada's second.
    workers = [worker(f"w{i}", gpus=0, cpu_slots=4) for i in range(4)]
    runs = [gang(1, 2, cpu_slots=4, user="ada", max_minutes=60), queued(2, "ada", gpus=0, cpu_slots=4, max_minutes=60),
            queued(3, "bob", gpus=0, cpu_slots=4, max_minutes=60), queued(4, "bob", gpus=0, cpu_slots=4, max_minutes=60)]

    result = plan(runs, workers)

    assert [a.run_id for a in result.assignments] == [1, 1, 3, 4]


def test_a_blocked_gang_reserves_the_workers_that_free_up_first():
    workers = [
        worker("w1", gpus=0, cpu_slots=4, running=[job(90, gpus=0, cpu_slots=4, ends_in_minutes=10)]),
        worker("w2", gpus=0, cpu_slots=4, running=[job(91, gpus=0, cpu_slots=4, ends_in_minutes=30)]),
        worker("w3", gpus=0, cpu_slots=4, running=[job(92, gpus=0, cpu_slots=4, ends_in_minutes=None)]),
    ]

    result = plan([gang(1, 2, cpu_slots=4)], workers)

    reservation = result.reservation
    assert reservation is not None and reservation.workers == ("w1", "w2")
    assert reservation.start_at == NOW + 30 * 60  # when the later of its two workers frees up
    assert "workers w1, w2 are reserved for it" in result.pending_reasons[1]


def test_backfill_never_delays_a_reserved_gang_but_fills_around_it():
    workers = [
        worker("w1", gpus=0, cpu_slots=4, running=[job(90, gpus=0, cpu_slots=2, ends_in_minutes=30)]),
        worker("w2", gpus=0, cpu_slots=4, running=[job(91, gpus=0, cpu_slots=2, ends_in_minutes=30)]),
        worker("w3", gpus=0, cpu_slots=4, running=[job(92, gpus=0, cpu_slots=4, ends_in_minutes=None)]),
    ]
    runs = [
        gang(1, 2, cpu_slots=4),  # first in line: reserves w1 and w2 from NOW + 30 min
        queued(2, "bob", gpus=0, cpu_slots=2, max_minutes=240, submitted_at=NOW - 10),  # would outlive the start
        queued(3, "cat", gpus=0, cpu_slots=2, max_minutes=20, submitted_at=NOW - 5),  # ends before: backfills
    ]

    result = plan(runs, workers)

    assert [(a.run_id, a.worker) for a in result.assignments] == [(3, "w1")]
    assert result.pending_reasons[2].startswith("reserved for run 1: it starts on w1")


def test_a_gang_placed_on_busy_workers_leaves_their_other_room_to_others():
    workers = [worker("w1", gpus=0, cpu_slots=8), worker("w2", gpus=0, cpu_slots=8)]

    result = plan([gang(1, 2, cpu_slots=4), queued(2, "bob", gpus=0, cpu_slots=4)], workers)

    assert [a.run_id for a in result.assignments].count(1) == 2
    assert any(a.run_id == 2 for a in result.assignments)
