"""Quotas an admin sets: per user and per team, on GPUs, CPU slots, memory, runs and GPU-hours per week."""

from __future__ import annotations

import pytest
from cluster_factories import GB, NOW, job, plan, queued, started, worker

from scheduler.policy import Limits, PolicyConfig, Quotas, UsageTotals, never_fits

EIGHT_EACH = PolicyConfig(quotas=Quotas(default=Limits(gpus=8)))
HOUR = 3600.0


def quotas(**kwargs: Limits) -> PolicyConfig:
    """Users' limits by name; a `team_` prefix names a team's."""
    users = {name: limits for name, limits in kwargs.items() if not name.startswith("team_")}
    teams = {name.removeprefix("team_"): limits for name, limits in kwargs.items() if name.startswith("team_")}
    return PolicyConfig(quotas=Quotas(users=users, teams=teams))


def test_user_at_quota_waits_with_the_quota_as_reason():
    workers = [worker("w1", running=[job(90, "ada", gpus=8)]), worker("w2")]

    result = plan([queued(1, "ada", gpus=1)], workers, config=EIGHT_EACH)

    assert result.assignments == ()
    assert result.pending_reasons[1] == "your quota: 8 of 8 GPUs in use"


def test_quota_counts_gpus_started_earlier_in_the_same_pass():
    runs = [queued(1, "ada", gpus=4), queued(2, "ada", gpus=4), queued(3, "ada", gpus=2)]

    result = plan(runs, [worker("w1"), worker("w2")], config=EIGHT_EACH)

    assert started(result) == [1, 2]
    assert result.pending_reasons[3] == "your quota: 8 of 8 GPUs in use"


def test_run_that_still_fits_under_the_quota_starts():
    workers = [worker("w1", running=[job(90, "ada", gpus=6)]), worker("w2")]

    result = plan([queued(1, "ada", gpus=4), queued(2, "ada", gpus=2)], workers, config=EIGHT_EACH)

    assert started(result) == [2]
    assert result.pending_reasons[1] == "your quota: 6 of 8 GPUs in use"


def test_one_users_quota_does_not_hold_back_another_user():
    workers = [worker("w1", running=[job(90, "ada", gpus=8)]), worker("w2")]

    result = plan([queued(1, "ada"), queued(2, "bob")], workers, config=EIGHT_EACH)

    assert started(result) == [2]


def test_per_user_quota_overrides_the_default():
    config = PolicyConfig(quotas=Quotas(default=Limits(gpus=2), users={"ada": Limits(gpus=16)}))

    result = plan(
        [queued(1, "ada", gpus=8), queued(2, "bob", gpus=8)], [worker("w1"), worker("w2")], config=config
    )

    assert started(result) == [1]
    assert result.pending_reasons[2] == "asks for 8 GPUs but your quota allows 2"


def test_cpu_only_runs_are_not_limited_by_the_gpu_quota():
    workers = [worker("w1", running=[job(90, "ada", gpus=8)]), worker("cpu", gpus=0)]

    result = plan([queued(1, "ada", gpus=0, cpu_slots=2)], workers, config=EIGHT_EACH)

    assert started(result) == [1]


def test_cpu_quota_holds_cpu_slots_at_once():
    workers = [worker("cpu", gpus=0, cpu_slots=16, running=[job(90, "ada", gpus=0, cpu_slots=3)])]
    runs = [queued(1, "ada", gpus=0, cpu_slots=1), queued(2, "ada", gpus=0, cpu_slots=1)]

    result = plan(runs, workers, config=quotas(ada=Limits(cpu_slots=4)))

    assert started(result) == [1]
    assert result.pending_reasons[2] == "your quota: 4 of 4 CPUs in use"


def test_memory_quota_counts_gigabytes_held():
    workers = [worker("w1", gpus=0, memory_gb=256, running=[job(90, "ada", gpus=0, memory_gb=28)])]
    runs = [queued(1, "ada", gpus=0, memory_gb=8), queued(2, "ada", gpus=0, memory_gb=4)]

    result = plan(runs, workers, config=quotas(ada=Limits(memory_mb=32 * GB)))

    assert started(result) == [2]
    assert result.pending_reasons[1] == "your quota: 28 GB of 32 GB of memory in use"


def test_runs_quota_limits_runs_at_once_of_any_shape():
    workers = [worker("w1", running=[job(90, "ada", gpus=0)]), worker("cpu", gpus=0)]
    runs = [queued(i, "ada", gpus=i % 2) for i in range(1, 5)]

    result = plan(runs, workers, config=quotas(ada=Limits(runs=3)))

    assert started(result) == [1, 2]
    assert result.pending_reasons[3] == result.pending_reasons[4] == "your quota: 3 of 3 runs running"


def test_gpu_hours_per_week_stop_gpu_runs_but_not_cpu_runs():
    usage = UsageTotals(NOW, week_gpu_seconds_by_user={"ada": 40 * HOUR})
    config = quotas(ada=Limits(gpu_hours_per_week=40))

    result = plan([queued(1, "ada", gpus=1), queued(2, "ada", gpus=0)], [worker("w1")], usage=usage, config=config)

    assert started(result) == [2]
    assert result.pending_reasons[1] == "your quota: 40.0 of 40 GPU-hours used in the last 7 days"


def test_gpu_hours_under_the_week_limit_let_gpu_runs_start():
    usage = UsageTotals(NOW, week_gpu_seconds_by_user={"ada": 39 * HOUR})

    result = plan([queued(1, "ada", gpus=1)], [worker("w1")], usage=usage, config=quotas(ada=Limits(gpu_hours_per_week=40)))

    assert started(result) == [1]


def test_team_quota_is_shared_by_its_members():
    workers = [worker("w1", running=[job(90, "ada", team="ml", gpus=3)]), worker("w2")]
    runs = [queued(1, "bob", team="ml", gpus=1), queued(2, "bob", team="ml", gpus=1), queued(3, "cat", gpus=1)]

    result = plan(runs, workers, config=quotas(team_ml=Limits(gpus=4)))

    assert sorted(started(result)) == [1, 3]
    assert result.pending_reasons[2] == "team ml's quota: 4 of 4 GPUs in use"


@pytest.mark.parametrize(("limits", "reason"), [
    (Limits(cpu_slots=2), "team ml's quota: 2 of 2 CPUs in use"),
    (Limits(memory_mb=8 * GB), "team ml's quota: 8 GB of 8 GB of memory in use"),
    (Limits(runs=1), "team ml's quota: 1 of 1 run running"),
])
def test_team_quota_on_each_resource(limits, reason):
    workers = [worker("w1", gpus=0, cpu_slots=32, running=[job(90, "ada", team="ml", gpus=0, cpu_slots=2, memory_gb=8)])]

    result = plan([queued(1, "bob", team="ml", gpus=0, memory_gb=1)], workers, config=quotas(team_ml=limits))

    assert result.pending_reasons == {1: reason}


def test_team_gpu_hours_per_week():
    usage = UsageTotals(NOW, week_gpu_seconds_by_team={"ml": 10 * HOUR})

    result = plan([queued(1, "bob", team="ml")], [worker("w1")], usage=usage,
                  config=quotas(team_ml=Limits(gpu_hours_per_week=10)))

    assert result.pending_reasons == {1: "team ml's quota: 10.0 of 10 GPU-hours used in the last 7 days"}


def test_a_users_runs_outside_the_team_do_not_count_against_it():
    workers = [worker("w1", running=[job(90, "bob", gpus=4)])]  # bob's own project, not the team's

    result = plan([queued(1, "bob", team="ml", gpus=2)], workers, config=quotas(team_ml=Limits(gpus=2)))

    assert started(result) == [1]


def test_the_user_quota_is_checked_before_the_teams():
    workers = [worker("w1", running=[job(90, "bob", team="ml", gpus=2)])]

    result = plan([queued(1, "bob", team="ml", gpus=1)], workers,
                  config=quotas(bob=Limits(gpus=2), team_ml=Limits(gpus=2)))

    assert result.pending_reasons == {1: "your quota: 2 of 2 GPUs in use"}


def test_a_run_blocked_by_quota_does_not_take_the_reservation():
    workers = [worker("w1", gpus=2, running=[job(90, "bob", gpus=2, ends_in_minutes=30)])]
    runs = [queued(1, "ada", gpus=2), queued(2, "cat", gpus=2)]

    result = plan(runs, workers, config=quotas(ada=Limits(gpus=1)))

    assert result.reservation is not None and result.reservation.run_id == 2


@pytest.mark.parametrize(("run", "limits", "reason"), [
    (queued(1, "ada", gpus=0, cpu_slots=8), Limits(cpu_slots=4), "asks for 8 CPUs but your quota allows 4"),
    (queued(1, "ada", gpus=0, memory_gb=64), Limits(memory_mb=32 * GB),
     "asks for 64 GB of memory but your quota allows 32 GB"),
    (queued(1, "ada"), Limits(runs=0), "your quota allows no runs at once"),
    (queued(1, "ada"), Limits(gpu_hours_per_week=0), "your quota allows no GPU-hours per week"),
])
def test_a_run_bigger_than_its_quota_never_fits(run, limits, reason):
    assert never_fits(run, [worker("w1")], Quotas(users={"ada": limits})) == reason


def test_a_run_bigger_than_its_teams_quota_never_fits():
    run = queued(1, "ada", team="ml", gpus=4)

    assert never_fits(run, [worker("w1")], Quotas(teams={"ml": Limits(gpus=2)})) == (
        "asks for 4 GPUs but team ml's quota allows 2"
    )


def test_no_quotas_set_changes_nothing():
    runs = [queued(i, "ada", gpus=1) for i in range(1, 10)]

    assert started(plan(runs, [worker("w1")], config=PolicyConfig(quotas=Quotas()))) == list(range(1, 9))


def test_the_nodes_of_a_running_multi_node_run_count_as_one_run_and_all_their_gpus():
    workers = [worker("w1", running=[job(90, "ada", gpus=2)]), worker("w2", running=[job(90, "ada", gpus=2)]),
               worker("w3")]

    result = plan([queued(1, "ada", gpus=1), queued(2, "ada", gpus=0)], workers,
                  config=quotas(ada=Limits(runs=2, gpus=4)))

    assert started(result) == [2]
    assert result.pending_reasons[1] == "your quota: 4 of 4 GPUs in use"
