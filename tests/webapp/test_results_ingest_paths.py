"""metrics_log's PostgreSQL fast path (COPY when every step is new) and its fallback agree with SQLite's."""

import math

import pytest

from webapp.experiments.models import Metric, MetricSummary
from webapp.experiments.results import MetricPoint, ResultError, metrics_log
from webapp.experiments.submit import run_submit

from .factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    project = ProjectFactory()
    return run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]


def _summary(run, key):
    s = MetricSummary.objects.get(run=run, key=key)
    return s.last, s.last_step, s.min, s.max, s.count


def test_appended_batches_store_nan_as_null_and_keep_the_last_write_of_a_step(run):
    batch = [MetricPoint("loss", 0, 5.0, 1.0), MetricPoint("loss", 1, math.nan, 1.0), MetricPoint("loss", 0, 4.0, 2.0)]
    assert metrics_log(run_id=run.id, points=batch) == 2
    assert dict(Metric.objects.filter(run=run).values_list("step", "value")) == {0: 4.0, 1: None}
    assert _summary(run, "loss") == (None, 1, 4.0, 4.0, 2)
    assert metrics_log(run_id=run.id, points=[MetricPoint("loss", 2, 3.0, 3.0), MetricPoint("acc", 0, 0.1, 3.0)]) == 2
    assert _summary(run, "loss") == (3.0, 2, 3.0, 4.0, 3)
    assert _summary(run, "acc") == (0.1, 0, 0.1, 0.1, 1)


def test_an_overlapping_batch_stores_only_the_new_steps_and_counts_them_once(run):
    metrics_log(run_id=run.id, points=[MetricPoint("loss", step, float(step), 0.0) for step in range(10)])
    overlap = [MetricPoint("loss", step, -1.0, 0.0) for step in range(5, 15)]
    assert metrics_log(run_id=run.id, points=overlap) == 5
    assert metrics_log(run_id=run.id, points=overlap) == 0
    assert Metric.objects.filter(run=run).count() == 15
    assert _summary(run, "loss") == (-1.0, 14, -1.0, 9.0, 15)


def test_a_point_stored_without_a_summary_sends_the_batch_down_the_checking_path(run):
    Metric.objects.create(run=run, key="loss", step=3, value=7.0, wall_time=0.0)  # no summary says step 3 is taken
    batch = [MetricPoint("loss", step, 1.0, 0.0) for step in range(6)]
    assert metrics_log(run_id=run.id, points=batch) == 5
    assert Metric.objects.get(run=run, step=3).value == 7.0
    assert _summary(run, "loss") == (1.0, 5, 1.0, 1.0, 5)


def test_a_full_batch_goes_in_at_once(run):
    batch = [MetricPoint(("a", "b")[i % 2], i // 2, i / 7, 0.0) for i in range(10_000)]
    assert metrics_log(run_id=run.id, points=batch) == 10_000
    assert metrics_log(run_id=run.id, points=batch) == 0
    assert _summary(run, "b") == (9999 / 7, 4999, 1 / 7, 9999 / 7, 5000)


def test_copied_rows_keep_unicode_keys_nan_and_extreme_steps_and_wall_times(run):
    batch = [MetricPoint("épreuve/loss ✓", -(2**62), 1.5, 1.25), MetricPoint("épreuve/loss ✓", 2**62, math.nan, 1e12),
             MetricPoint("a", 0, -math.inf, 0.0)]
    assert metrics_log(run_id=run.id, points=batch) == 3
    stored = set(Metric.objects.filter(run=run).values_list("key", "step", "value", "wall_time"))
    assert stored == {("épreuve/loss ✓", -(2**62), 1.5, 1.25), ("épreuve/loss ✓", 2**62, None, 1e12), ("a", 0, -math.inf, 0.0)}


@pytest.mark.parametrize("point, message", [
    (MetricPoint("lo\0ss", 0, 1.0, 0.0), "NUL"),
    (MetricPoint("x" * 201, 0, 1.0, 0.0), "1-200 characters"),
    (MetricPoint("loss", 2**64, 1.0, 0.0), "64-bit integer"),
    (MetricPoint("loss", 0, 1.0, math.inf), "non-finite wall time"),
])
def test_a_bad_point_refuses_the_whole_batch(run, point, message):
    with pytest.raises(ResultError, match=message):
        metrics_log(run_id=run.id, points=[MetricPoint("ok", 0, 1.0, 0.0), point])
    assert not Metric.objects.filter(run=run).exists() and not MetricSummary.objects.filter(run=run).exists()
