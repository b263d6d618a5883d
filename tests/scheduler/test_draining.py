"""A draining worker (stopping) gets no new runs; the runs it still holds keep counting."""

from __future__ import annotations

from cluster_factories import NOW, job, placed_on, plan, queued, worker

from scheduler.policy import Limits, PolicyConfig, Quotas


def test_draining_worker_is_never_given_a_run():
    workers = [worker("a-stopping", gpus=8, draining=True), worker("b", gpus=8)]

    result = plan([queued(1, gpus=2), queued(2, gpus=0)], workers)

    assert {name for name, _ in placed_on(result).values()} == {"b"}


def test_run_handed_back_by_a_stopping_worker_goes_elsewhere():
    stopping = worker("w1", gpus=4, running=[job(90, gpus=1)], draining=True)  # it has room left

    result = plan([queued(1, gpus=1)], [stopping, worker("w2", gpus=1)])

    assert placed_on(result) == {1: ("w2", (0,))}


def test_with_only_draining_workers_runs_wait_for_a_worker():
    result = plan([queued(1)], [worker("w1", draining=True)])

    assert result.assignments == ()
    assert result.pending_reasons == {1: "waiting for a worker to come online"}


def test_jobs_on_a_draining_worker_still_count_against_the_quota():
    workers = [worker("w1", gpus=4, running=[job(90, "ada", gpus=2)], draining=True), worker("w2", gpus=4)]

    result = plan([queued(1, "ada", gpus=1)], workers, config=PolicyConfig(quotas=Quotas(users={"ada": Limits(gpus=2)})))

    assert result.pending_reasons == {1: "your quota: 2 of 2 GPUs in use"}


def test_draining_worker_is_not_reserved_even_when_it_frees_up_first():
    workers = [
        worker("w1", gpus=4, running=[job(90, gpus=4, ends_in_minutes=5)], draining=True),
        worker("w2", gpus=4, running=[job(91, gpus=4, ends_in_minutes=60)]),
    ]

    result = plan([queued(1, gpus=4)], workers)

    assert result.reservation is not None
    assert (result.reservation.worker, result.reservation.start_at) == ("w2", NOW + 60 * 60)
