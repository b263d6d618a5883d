"""Reading series: cached overviews, zoom at full resolution, live tails, joins on step."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.dashboards import series as store
from webapp.dashboards.series import join_on_step, overviews, series_refs, tail, zoomed
from webapp.experiments.models import MetricRollup
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit

from ..factories import ProjectFactory
from .conftest import log_curve

pytestmark = pytest.mark.django_db


@pytest.fixture
def long_run():
    project = ProjectFactory()
    run = run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]
    values = np.cos(np.arange(20_000) / 500.0)
    values[4321] = 99.0
    log_curve(run, "loss", values.tolist())
    return run


def metric_queries(context) -> int:
    """Queries reading raw points (not their summaries or rollups)."""
    return sum('"experiments_metric"' in q["sql"] for q in context.captured_queries)


def without_rollups(run) -> None:
    """As a run stored before rollups existed."""
    MetricRollup.objects.filter(run=run).delete()


def test_an_overview_comes_from_the_rollup_downsampled_with_the_spike_and_no_raw_point_read(long_run):
    refs = series_refs([long_run.id], ["loss"])
    with CaptureQueriesContext(connection) as context:
        series = overviews(refs)[(long_run.id, "loss")]
    assert len(series.steps) <= store.SERIES_BUDGET and series.raw_count == 20_000 and series.sampled
    assert 4321 in series.steps.tolist() and series.steps[0] == 0 and series.steps[-1] == 19_999
    assert metric_queries(context) == 0
    again = overviews(refs)[(long_run.id, "loss")]
    assert np.array_equal(series.steps, again.steps) and np.array_equal(series.values, again.values)


def test_a_live_series_logged_to_after_its_refs_were_read_still_comes_from_its_rollup(long_run):
    refs = series_refs([long_run.id], ["loss"])
    metrics_log(run_id=long_run.id, points=[MetricPoint("loss", 20_000, -50.0, 2e9)])
    with CaptureQueriesContext(connection) as context:
        series = overviews(refs)[(long_run.id, "loss")]
    assert metric_queries(context) == 0
    assert series.raw_count == 20_001 and series.steps[-1] == 20_000 and series.values.min() == -50.0


def test_a_series_without_a_rollup_is_read_once_then_cached(long_run):
    without_rollups(long_run)
    refs = series_refs([long_run.id], ["loss"])
    with CaptureQueriesContext(connection) as first:
        series = overviews(refs)[(long_run.id, "loss")]
    with CaptureQueriesContext(connection) as second:
        again = overviews(refs)[(long_run.id, "loss")]
    assert metric_queries(first) == 1 and metric_queries(second) == 0
    assert 4321 in series.steps.tolist() and np.array_equal(series.steps, again.steps)


def test_a_new_point_changes_the_cache_entry(long_run):
    before = overviews(series_refs([long_run.id], ["loss"]))[(long_run.id, "loss")]
    metrics_log(run_id=long_run.id, points=[MetricPoint("loss", 50_000, -7.0, 2e9)])
    after = overviews(series_refs([long_run.id], ["loss"]))[(long_run.id, "loss")]
    assert after.steps[-1] == 50_000 and before.steps[-1] == 19_999 and after.raw_count == 20_001


def test_zoom_gives_every_point_when_the_range_fits_the_budget(long_run):
    ref = series_refs([long_run.id], ["loss"])[0]
    overview = overviews([ref])[(long_run.id, "loss")]
    narrow = zoomed(ref, overview, lo=4000, hi=4999, budget=1500)
    assert narrow.steps.tolist() == list(range(4000, 5000)) and not narrow.sampled
    wide = zoomed(ref, overview, lo=1000, hi=15_000, budget=1500)
    assert wide.sampled and len(wide.steps) <= 1500 and 4321 in wide.steps.tolist()
    assert wide.steps[0] == 1000 and wide.steps[-1] == 15_000


def test_a_wide_zoom_comes_from_the_rollup_with_raw_ends_and_keeps_the_range_extremes(long_run):
    ref = series_refs([long_run.id], ["loss"])[0]
    overview = overviews([ref])[(long_run.id, "loss")]
    with CaptureQueriesContext(connection) as context:
        wide = zoomed(ref, overview, lo=1001, hi=14_999, budget=500)
    raw = store.read_points(long_run.id, "loss", lo=1001, hi=14_999)
    assert len(context.captured_queries) == metric_queries(context) == 2  # the two ends, each within a bucket
    assert wide.steps[0] == 1001 and wide.steps[-1] == 14_999 and len(wide.steps) <= 500
    assert wide.raw_count == len(raw.steps) and wide.sampled
    assert wide.values.max() == raw.values.max() == 99.0 and wide.values.min() == raw.values.min()


def test_tail_returns_only_newer_points(long_run):
    ref = series_refs([long_run.id], ["loss"])[0]
    assert tail(ref, after=19_990, budget=100).steps.tolist() == list(range(19_991, 20_000))
    assert len(tail(ref, after=19_999, budget=100).steps) == 0


def test_join_on_step_takes_the_latest_value_at_or_before_each_step():
    by = store.Series(np.array([0, 10, 20]), np.array([0.0, 1.0, 2.0]), np.zeros(3), 3)
    joined = join_on_step(np.array([-1, 0, 5, 10, 19, 25]), by)
    assert np.isnan(joined[0]) and joined[1:].tolist() == [0.0, 0.0, 1.0, 1.0, 2.0]


def test_series_cache_warm_builds_the_missing_rollups_of_a_run(long_run):
    log_curve(long_run, "acc", [0.1, 0.2])
    assert store.series_cache_warm(run_id=long_run.id) == 0  # logged with rollups: nothing to do
    without_rollups(long_run)
    assert store.series_cache_warm(run_id=long_run.id) == 2
    with CaptureQueriesContext(connection) as context:
        overviews(series_refs([long_run.id]))
    assert metric_queries(context) == 0


def test_past_the_deadline_series_without_rollups_are_left_for_the_next_request(long_run):
    log_curve(long_run, "acc", [0.1, 0.2])
    without_rollups(long_run)
    refs = series_refs([long_run.id])
    first = overviews(refs, deadline=0.0)  # long past: reads exactly one series
    assert len(first) == 1
    second = overviews(refs, deadline=0.0)  # the first is cached now, so the other is read
    assert len(second) == 2
