"""The API's metric endpoints give system metrics (sys/*) as numbered samples with their wall times."""

from __future__ import annotations

import pytest

from webapp.experiments.results import MetricPoint, metrics_log

T0 = 1_796_155_671.0


@pytest.fixture
def run(world):
    run = world.submit()
    metrics_log(run_id=run.id, points=[MetricPoint("sys/cpu_percent", s, 50.0 + s, T0 + 5 * s) for s in range(10)]
                + [MetricPoint("loss", s, 1.0 / (s + 1), T0 + s) for s in range(100)])
    return run


def test_history_of_a_system_metric_has_sample_steps_and_their_wall_times(world, run):
    history = world.api("viewer").get(f"/api/runs/{run.id}/metrics/history", {"key": "sys/cpu_percent"}).json()
    assert history["steps"] == list(range(10)) and history["wall_times"] == [T0 + 5 * s for s in range(10)]
    assert history["values"] == [50.0 + s for s in range(10)] and history["total"] == 10
    ranged = world.api("viewer").get(f"/api/runs/{run.id}/metrics/history", {"key": "sys/cpu_percent", "step_min": 8}).json()
    assert ranged["steps"] == [8, 9] and ranged["wall_times"] == [T0 + 40, T0 + 45]


def test_summaries_and_the_run_say_a_system_metrics_last_sample_number_not_a_unix_time(world, run):
    keys = {row["key"]: row for row in world.api("viewer").get(f"/api/runs/{run.id}/metrics").json()}
    assert keys["sys/cpu_percent"]["last_step"] == 9 and keys["loss"]["last_step"] == 99
    detail = world.api("viewer").get(f"/api/runs/{run.id}").json()
    assert all(summary["last_step"] < 1e6 for summary in detail["metrics"].values())
