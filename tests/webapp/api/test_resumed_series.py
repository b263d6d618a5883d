"""A resumed attempt's points supersede those the lost attempt logged past the checkpoint it resumes from."""

from __future__ import annotations

import pytest
from django.db import connection

from webapp.dashboards.export import csv_lines
from webapp.dashboards.series import overviews, series_refs
from webapp.experiments.models import Metric, MetricResume, MetricRollup, MetricSummary, Run, SupersededMetric
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.superseding import metrics_supersede_after


def _start(run, attempt: int, resume_step: int | None) -> int:
    """What the worker does when `attempt` starts: the claim made it current, then the series give way."""
    Run.objects.filter(id=run.id).update(state="running", attempt=attempt)
    return metrics_supersede_after(run_id=run.id, step=resume_step, attempt=attempt)


def _log(run, steps, value, attempt: int) -> int:
    return metrics_log(run_id=run.id, points=[MetricPoint("loss", s, value(s), 1000.0 + s) for s in steps], attempt=attempt)


@pytest.fixture
def resumed(world):
    """Attempt 1 logs steps 0..59 (checkpoint at 29) and is lost; attempt 2 resumes from 29 and logs 30..59 anew."""
    run = world.submit()
    assert _start(run, 1, None) == 0
    assert _log(run, range(60), float, attempt=1) == 60
    assert _start(run, 2, 29) == 30
    assert _log(run, range(30, 60), lambda s: 100.0 + s, attempt=2) == 30
    return run


def _expected() -> list[tuple[int, float]]:
    return [(s, float(s)) for s in range(30)] + [(s, 100.0 + s) for s in range(30, 60)]


def test_the_stored_series_summary_and_rollup_are_the_resumed_attempts_after_the_checkpoint(resumed):
    stored = list(Metric.objects.filter(run=resumed, key="loss").order_by("step").values_list("step", "value"))
    assert stored == _expected()
    summary = MetricSummary.objects.get(run=resumed, key="loss")
    assert (summary.count, summary.last_step, summary.last, summary.min, summary.max) == (60, 59, 159.0, 0.0, 159.0)
    series = overviews(series_refs([resumed.id], ["loss"]))[(resumed.id, "loss")]
    assert list(zip(series.steps.tolist(), series.values.tolist(), strict=True)) == _expected()
    assert MetricRollup.objects.filter(run=resumed, key="loss").get().count == 60


def test_the_api_series_and_csv_export_show_only_the_resumed_points(world, resumed):
    body = world.api("viewer").get(f"/api/runs/{resumed.id}/metrics/history", {"key": "loss"}).json()
    assert list(zip(body["steps"], body["values"], strict=True)) == _expected()
    keys = world.api("viewer").get(f"/api/runs/{resumed.id}/metrics").json()
    assert keys[0]["last"] == 159.0 and keys[0]["count"] == 60
    rows = "".join(csv_lines([resumed], ["loss"])).splitlines()[1:]
    assert [float(row.split(",")[5]) for row in rows] == [v for _, v in _expected()]


def test_the_superseded_points_are_kept_for_audit_with_the_attempt_that_superseded_them(resumed):
    kept = SupersededMetric.objects.filter(run=resumed).order_by("step").values_list("step", "value", "superseded_by")
    assert list(kept) == [(s, float(s), 2) for s in range(30, 60)]
    assert list(MetricResume.objects.filter(run=resumed).values_list("attempt", "after_step", "superseded")) == [
        (1, None, 0), (2, 29, 30)
    ]


def test_superseding_happens_once_and_redelivery_stays_idempotent(resumed):
    assert metrics_supersede_after(run_id=resumed.id, step=29, attempt=2) == 0  # a repeat: attempt 2's points stay
    assert _log(resumed, range(30, 60), lambda s: 100.0 + s, attempt=2) == 0
    assert _log(resumed, range(60), float, attempt=1) == 0  # the lost attempt's results arriving late
    assert list(Metric.objects.filter(run=resumed).order_by("step").values_list("step", "value")) == _expected()
    assert SupersededMetric.objects.filter(run=resumed).count() == 30


def test_a_lost_attempts_late_points_past_the_resume_go_to_the_audit_table(world):
    run = world.submit()
    _start(run, 1, None)
    _log(run, range(10), float, attempt=1)
    _start(run, 2, 4)  # steps 5..9 superseded; attempt 1's steps 10..14 arrive only now
    assert _log(run, range(10, 15), float, attempt=1) == 0
    assert list(Metric.objects.filter(run=run).values_list("step", flat=True).order_by("step")) == list(range(5))
    assert sorted(SupersededMetric.objects.filter(run=run).values_list("step", flat=True)) == list(range(5, 15))
    assert MetricSummary.objects.get(run=run).last_step == 4


def test_a_restart_without_a_checkpoint_supersedes_everything(world):
    run = world.submit()
    _start(run, 1, None)
    metrics_log(run_id=run.id, points=[MetricPoint("acc", s, 0.5, 1.0) for s in range(3)], attempt=1)
    assert _start(run, 2, None) == 3
    assert not Metric.objects.filter(run=run).exists()
    assert not MetricSummary.objects.filter(run=run).exists() and not MetricRollup.objects.filter(run=run).exists()
    assert world.api("viewer").get(f"/api/runs/{run.id}/metrics").json() == []


def test_a_stale_attempt_cannot_supersede_the_current_ones_points(resumed):
    assert metrics_supersede_after(run_id=resumed.id, step=None, attempt=1) == 0
    assert Metric.objects.filter(run=resumed).count() == 60


def test_deleting_the_run_deletes_its_superseded_points_in_the_database(resumed):
    with connection.cursor() as cursor:  # behind the ORM: the trigger alone deletes the points
        for table in ("experiments_runevent", "experiments_metricsummary", "experiments_metricrollup",
                      "experiments_metricresume"):
            cursor.execute(f"DELETE FROM {table} WHERE run_id = %s", [resumed.id])  # noqa: S608 -- fixed names
        cursor.execute("DELETE FROM experiments_run WHERE id = %s", [resumed.id])
    assert not SupersededMetric.objects.filter(run_id=resumed.id).exists()
    assert not Metric.objects.filter(run_id=resumed.id).exists()
