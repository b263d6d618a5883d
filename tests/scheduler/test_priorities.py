"""Priorities order a user's own runs; aging stops any run from waiting forever."""

from __future__ import annotations

from cluster_factories import NOW, plan, queued, started, worker

from scheduler.policy import PolicyConfig, UsageTotals

HOUR = 3600.0


def test_a_users_higher_priority_run_goes_before_their_older_runs():
    runs = [queued(1, priority=0), queued(2, priority=5), queued(3, priority=1)]

    result = plan(runs, [worker("w1", gpus=2)])

    assert started(result) == [2, 3]


def test_equal_priorities_go_oldest_first():
    runs = [queued(2, submitted_at=NOW - 50), queued(1, submitted_at=NOW - 10)]

    result = plan(runs, [worker("w1", gpus=1)])

    assert started(result) == [2]


def test_priority_does_not_jump_ahead_of_a_fairer_share_user():
    usage = UsageTotals(NOW, {"ada": 5000.0, "bob": 0.0})

    result = plan(
        [queued(1, "ada", priority=100), queued(2, "bob", priority=0)], [worker("w1", gpus=1)], usage=usage
    )

    assert started(result) == [2]


def test_a_run_queued_longer_than_the_starvation_limit_goes_first():
    usage = UsageTotals(NOW, {"ada": 5000.0, "bob": 0.0})
    config = PolicyConfig(starvation_after_seconds=2 * HOUR)
    runs = [
        queued(1, "ada", submitted_at=NOW - 3 * HOUR),
        queued(2, "bob", priority=9, submitted_at=NOW - 60),
    ]

    result = plan(runs, [worker("w1", gpus=1)], usage=usage, config=config)

    assert started(result) == [1]


def test_starving_runs_go_oldest_first_whatever_their_priority():
    config = PolicyConfig(starvation_after_seconds=HOUR)
    runs = [
        queued(1, submitted_at=NOW - 2 * HOUR, priority=9),
        queued(2, submitted_at=NOW - 3 * HOUR, priority=0),
    ]

    result = plan(runs, [worker("w1", gpus=1)], config=config)

    assert started(result) == [2]


def test_aging_can_be_turned_off():
    usage = UsageTotals(NOW, {"ada": 5000.0, "bob": 0.0})
    config = PolicyConfig(starvation_after_seconds=None)
    runs = [queued(1, "ada", submitted_at=NOW - 300 * HOUR), queued(2, "bob")]

    result = plan(runs, [worker("w1", gpus=1)], usage=usage, config=config)

    assert started(result) == [2]
