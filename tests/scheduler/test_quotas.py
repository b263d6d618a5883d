"""Per-user quotas on GPUs held at once."""

from __future__ import annotations

from cluster_factories import job, plan, queued, started, worker

from scheduler.policy import PolicyConfig, Quotas

EIGHT_EACH = PolicyConfig(quotas=Quotas(default_gpus=8))


def test_user_at_quota_waits_with_the_quota_as_reason():
    workers = [worker("w1", running=[job(90, "ada", gpus=8)]), worker("w2")]

    result = plan([queued(1, "ada", gpus=1)], workers, config=EIGHT_EACH)

    assert result.assignments == ()
    assert result.pending_reasons[1] == "user quota: 8 of 8 GPUs in use"


def test_quota_counts_gpus_started_earlier_in_the_same_pass():
    runs = [queued(1, "ada", gpus=4), queued(2, "ada", gpus=4), queued(3, "ada", gpus=2)]

    result = plan(runs, [worker("w1"), worker("w2")], config=EIGHT_EACH)

    assert started(result) == [1, 2]
    assert result.pending_reasons[3] == "user quota: 8 of 8 GPUs in use"


def test_run_that_still_fits_under_the_quota_starts():
    workers = [worker("w1", running=[job(90, "ada", gpus=6)]), worker("w2")]

    result = plan([queued(1, "ada", gpus=4), queued(2, "ada", gpus=2)], workers, config=EIGHT_EACH)

    assert started(result) == [2]
    assert result.pending_reasons[1] == "user quota: 6 of 8 GPUs in use"


def test_one_users_quota_does_not_hold_back_another_user():
    workers = [worker("w1", running=[job(90, "ada", gpus=8)]), worker("w2")]

    result = plan([queued(1, "ada"), queued(2, "bob")], workers, config=EIGHT_EACH)

    assert started(result) == [2]


def test_per_user_quota_overrides_the_default():
    config = PolicyConfig(quotas=Quotas(default_gpus=2, per_user={"ada": 16}))

    result = plan(
        [queued(1, "ada", gpus=8), queued(2, "bob", gpus=8)], [worker("w1"), worker("w2")], config=config
    )

    assert started(result) == [1]
    assert result.pending_reasons[2] == "asks for 8 GPUs but the user quota is 2"


def test_cpu_only_runs_are_not_limited_by_the_gpu_quota():
    workers = [worker("w1", running=[job(90, "ada", gpus=8)]), worker("cpu", gpus=0)]

    result = plan([queued(1, "ada", gpus=0, cpu_slots=2)], workers, config=EIGHT_EACH)

    assert started(result) == [1]
