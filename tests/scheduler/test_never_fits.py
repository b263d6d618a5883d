"""`never_fits`: runs the submit service should refuse, with the reason."""

from __future__ import annotations

from cluster_factories import plan, queued, worker

from scheduler.policy import Limits, Quotas, never_fits

CLUSTER = [
    worker("w8", gpus=8, cpu_slots=32),
    worker("w4", gpus=4, cpu_slots=64),
    worker("cpu", gpus=0, cpu_slots=128),
]


def test_run_that_fits_some_worker_is_accepted():
    assert never_fits(queued(1, gpus=8, cpu_slots=32), CLUSTER, Quotas()) is None


def test_more_gpus_than_the_largest_worker_never_fits():
    assert (
        never_fits(queued(1, gpus=16), CLUSTER, Quotas())
        == "asks for 16 GPUs on one worker; the largest worker has 8"
    )


def test_gpus_and_cpu_slots_must_come_from_the_same_worker():
    reason = never_fits(queued(1, gpus=8, cpu_slots=64), CLUSTER, Quotas())

    assert reason == "asks for 8 GPUs and 64 CPU slots on one worker; workers with 8 GPUs have at most 32"


def test_more_cpu_slots_than_any_worker_never_fits():
    reason = never_fits(queued(1, gpus=0, cpu_slots=500), CLUSTER, Quotas())

    assert reason == "asks for 500 CPU slots on one worker; the largest worker has 128"


def test_more_gpus_than_the_users_quota_never_fits():
    assert (
        never_fits(queued(1, "ada", gpus=8), CLUSTER, Quotas(users={"ada": Limits(gpus=4)}))
        == "asks for 8 GPUs but your quota allows 4"
    )


def test_a_run_asking_for_nothing_is_refused():
    assert never_fits(queued(1, gpus=0, cpu_slots=0), CLUSTER, Quotas()) is not None


def test_negative_requests_are_refused():
    assert never_fits(queued(1, gpus=-1), CLUSTER, Quotas()) is not None


def test_with_no_workers_registered_yet_nothing_is_refused():
    assert never_fits(queued(1, gpus=64), [], Quotas()) is None


def test_a_pass_gives_runs_that_never_fit_their_reason_and_places_the_rest():
    result = plan([queued(1, gpus=16), queued(2, gpus=8)], CLUSTER)

    assert result.pending_reasons == {1: "asks for 16 GPUs on one worker; the largest worker has 8"}
    assert [a.run_id for a in result.assignments] == [2]


def test_a_pass_with_no_workers_says_so():
    result = plan([queued(1)], [])

    assert result.pending_reasons == {1: "waiting for a worker to come online"}
