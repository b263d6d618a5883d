"""Fair share between teams and users by decayed GPU-seconds."""

from __future__ import annotations

import pytest
from cluster_factories import NOW, job, plan, queued, started, worker

from scheduler.policy import UsageRecord, UsageTotals, usage_totals

HOUR = 3600.0


def one_gpu_free():
    return [worker("w1", gpus=1)]


def test_finished_usage_halves_every_half_life():
    records = [UsageRecord("ada", "red", 800.0, ended_at=NOW - 2 * HOUR)]

    totals = usage_totals(records, now=NOW, half_life_seconds=HOUR)

    assert totals.by_user == {"ada": pytest.approx(200.0)}
    assert totals.by_team == {"red": pytest.approx(200.0)}


def test_running_usage_counts_in_full():
    totals = usage_totals([UsageRecord("ada", None, 300.0, ended_at=None)], now=NOW, half_life_seconds=HOUR)

    assert totals.by_user == {"ada": 300.0}
    assert totals.by_team == {}


def test_pre_aggregated_totals_are_aged_and_added_to():
    base = UsageTotals(NOW - HOUR, {"ada": 1000.0}, {"red": 1000.0})

    totals = usage_totals(
        [UsageRecord("bob", "red", 10.0, ended_at=NOW)], now=NOW, half_life_seconds=HOUR, base=base
    )

    assert totals.as_of == NOW
    assert totals.by_user == {"ada": pytest.approx(500.0), "bob": 10.0}
    assert totals.by_team == {"red": pytest.approx(510.0)}


def test_user_with_less_usage_goes_first_even_if_submitted_later():
    usage = UsageTotals(NOW, {"ada": 1000.0, "bob": 10.0})

    result = plan([queued(1, "ada"), queued(2, "bob")], one_gpu_free(), usage=usage)

    assert started(result) == [2]
    assert result.pending_reasons[1].startswith("behind higher-priority or fairer-share runs")


def test_old_usage_weighs_less_than_recent_usage():
    records = [
        UsageRecord("ada", None, 1000.0, ended_at=NOW - 3 * 7 * 24 * HOUR),
        UsageRecord("bob", None, 200.0, ended_at=NOW),
    ]
    usage = usage_totals(records, now=NOW, half_life_seconds=7 * 24 * HOUR)

    result = plan([queued(1, "bob"), queued(2, "ada")], one_gpu_free(), usage=usage)

    assert started(result) == [2]


def test_one_pass_alternates_between_users_with_equal_usage():
    runs = [queued(i, "ada", max_minutes=60) for i in range(1, 4)] + [
        queued(i, "bob", max_minutes=60) for i in range(4, 7)
    ]

    result = plan(runs, [worker("w1", gpus=4)])

    assert started(result) == [1, 4, 2, 5]


def test_teams_share_before_their_users_do():
    usage = UsageTotals(NOW, {"ada": 1000.0, "amy": 0.0, "bob": 500.0}, {"red": 1000.0, "blue": 500.0})
    runs = [queued(1, "amy", team="red"), queued(2, "bob", team="blue")]

    result = plan(runs, one_gpu_free(), usage=usage)

    assert started(result) == [2]


def test_inside_a_team_the_user_with_less_usage_goes_first():
    usage = UsageTotals(NOW, {"ada": 1000.0, "amy": 10.0}, {"red": 1010.0})
    runs = [queued(1, "ada", team="red"), queued(2, "amy", team="red")]

    result = plan(runs, one_gpu_free(), usage=usage)

    assert started(result) == [2]


def test_a_user_without_a_team_competes_as_a_team_of_one():
    usage = UsageTotals(NOW, {"ada": 100.0, "bob": 200.0}, {"blue": 200.0})

    result = plan([queued(1, "bob", team="blue"), queued(2, "ada")], one_gpu_free(), usage=usage)

    assert started(result) == [2]


def test_gpu_time_promised_to_running_jobs_counts_against_their_user():
    workers = [worker("w1", gpus=8, running=[job(90, "ada", gpus=7, ends_in_minutes=60)])]

    result = plan([queued(1, "ada"), queued(2, "bob")], workers)

    assert started(result) == [2]


def test_ties_go_to_the_earlier_submission_then_the_lower_id():
    runs = [
        queued(3, "cat", submitted_at=NOW - 5),
        queued(2, "bob", submitted_at=NOW - 10),
        queued(1, "ada", submitted_at=NOW - 5),
    ]

    result = plan(runs, [worker("w1", gpus=3)])

    assert started(result) == [2, 1, 3]
