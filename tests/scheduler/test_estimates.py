"""Expected durations from history (an input of the pure policy): reservations and backfill use them."""

from __future__ import annotations

from dataclasses import replace

from cluster_factories import NOW, job, placed_on, plan, queued, worker

from scheduler.policy import QueuedRun


def test_expected_seconds_is_the_estimate_bounded_by_max_minutes():
    run = queued(1, max_minutes=30)

    assert run.expected_seconds == 30 * 60
    assert replace(run, expected_minutes=4.0).expected_seconds == 4 * 60
    assert replace(run, expected_minutes=90.0).expected_seconds == 30 * 60
    assert replace(queued(2), expected_minutes=7.0).expected_seconds == 7 * 60  # no limit: the estimate alone


def busy():
    """The running job may run 60 min but is expected to end in 5 (estimated by the caller)."""
    return [worker("w1", gpus=8, running=[job(90, gpus=6, ends_in_minutes=5)])]


def test_the_reservation_starts_when_running_jobs_are_expected_to_end():
    result = plan([queued(1, "ada", gpus=8, max_minutes=60)], busy())

    assert result.reservation is not None and result.reservation.start_at == NOW + 5 * 60
    assert result.pending_reasons[1].endswith("next to start: w1 is reserved for it in about 5 min")


def test_a_run_expected_to_end_before_the_reservation_backfills():
    short = QueuedRun(2, "bob", None, 0, 2, 1, NOW - 10, max_minutes=60, expected_minutes=3.0)

    result = plan([queued(1, "ada", gpus=8, max_minutes=60), short], busy())

    assert placed_on(result) == {2: ("w1", (6, 7))}


def test_a_run_whose_estimate_outlasts_the_reservation_waits():
    long = QueuedRun(2, "bob", None, 0, 2, 1, NOW - 10, max_minutes=60, expected_minutes=20.0)

    result = plan([queued(1, "ada", gpus=8, max_minutes=60), long], busy())

    assert result.assignments == ()
    assert result.pending_reasons[2].startswith("reserved for run 1: it starts on w1 in about 5 min")


def test_a_placed_run_is_charged_its_expected_share_seconds():
    """ada's first run is expected to take 1 min, bob's 60: after one each, ada (charged less) goes next."""
    runs = [
        QueuedRun(1, "ada", None, 0, 1, 1, NOW - 30, max_minutes=60, expected_minutes=1.0),
        QueuedRun(2, "ada", None, 0, 1, 1, NOW - 20, max_minutes=60, expected_minutes=1.0),
        QueuedRun(3, "bob", None, 0, 1, 1, NOW - 25, max_minutes=60),
        QueuedRun(4, "bob", None, 0, 1, 1, NOW - 15, max_minutes=60),
    ]

    result = plan(runs, [worker("w1", gpus=3)])

    assert [a.run_id for a in result.assignments] == [1, 3, 2]
