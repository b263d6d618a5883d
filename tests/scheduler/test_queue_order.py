"""`queue_order`: the queue as a person reads it on the cluster page, in the order passes would start it."""

from __future__ import annotations

from cluster_factories import NOW, job, queued, worker

from scheduler.policy import PolicyConfig, UsageTotals, queue_order


def order(runs, workers, usage=None, config=None):
    return queue_order(queued=runs, workers=workers, usage=usage or UsageTotals(NOW), config=config or PolicyConfig(),
                       now=NOW)


def test_users_alternate_as_each_run_is_charged_as_if_it_started():
    runs = [queued(i, "ada", max_minutes=10) for i in range(1, 4)] + [queued(i, "bob", max_minutes=10) for i in (4, 5)]

    ordered, users, _ = order(runs, [worker("w1", gpus=0)])  # no room at all: the order alone

    assert [run.id for run in ordered] == [1, 4, 2, 5, 3]
    assert users == {"ada": 0.0, "bob": 0.0}


def test_running_jobs_count_toward_where_a_user_stands():
    runs = [queued(1, "ada"), queued(2, "bob")]
    workers = [worker("w1", running=[job(90, "ada", gpus=4, ends_in_minutes=60)])]

    ordered, users, _ = order(runs, workers)

    assert [run.id for run in ordered] == [2, 1]
    assert users["ada"] > 0 and users["bob"] == 0


def test_runs_waiting_past_the_starvation_limit_come_first_and_teams_are_reported():
    config = PolicyConfig(starvation_after_seconds=100)
    runs = [queued(1, "ada", team="ml", submitted_at=NOW - 10), queued(2, "bob", submitted_at=NOW - 500)]

    ordered, users, teams = order(runs, [worker("w1")], config=config)

    assert [run.id for run in ordered] == [2, 1]
    assert set(users) == {"ada", "bob"} and set(teams) == {"ml"}
