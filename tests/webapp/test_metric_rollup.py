"""The rollup metrics_log keeps per (run, key) equals one built from the stored points, however they came."""

import math

import numpy as np
import pytest
from django.db import connection

from webapp.dashboards.series import SERIES_BUDGET, overviews, series_refs
from webapp.experiments import rollup
from webapp.experiments.lifecycle import run_delete
from webapp.experiments.models import Metric, MetricRollup, MetricSummary, Run, RunState
from webapp.experiments.results import MetricPoint, metric_rollups_rebuild, metrics_log
from webapp.experiments.submit import run_submit

from .factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    project = ProjectFactory()
    return run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]


def stored_rollup(run, key) -> bytes:
    rows = MetricRollup.objects.filter(run=run, key=key).order_by("chunk").values_list("buckets", flat=True)
    assert all(len(bytes(row)) <= rollup.CHUNK_BUCKETS * rollup.BUCKET.itemsize for row in rows)
    return b"".join(bytes(row) for row in rows)


def rebuilt_rollup(run, key) -> bytes:
    """The rollup built at once from every stored point, the reference."""
    rows = list(Metric.objects.filter(run=run, key=key).order_by("step").values_list("step", "value", "wall_time"))
    steps = np.array([r[0] for r in rows], np.int64)
    values = np.array([r[1] for r in rows], np.float64)
    walls = np.array([r[2] for r in rows], np.float64)
    return rollup.build(steps, values, walls, rollup.width_for(len(rows))).tobytes()


def assert_rollups_match_points(run, keys) -> None:
    for key in keys:
        assert stored_rollup(run, key) == rebuilt_rollup(run, key), key
        summary = MetricSummary.objects.get(run=run, key=key)
        assert summary.count == Metric.objects.filter(run=run, key=key).count()


def log(run, key, steps, values, wall=1.0) -> int:
    return metrics_log(run_id=run.id, points=[MetricPoint(key, int(s), float(v), wall + int(s)) for s, v in zip(steps, values, strict=True)])


@pytest.mark.parametrize("seed", range(20))
def test_extending_and_widening_in_any_batches_equals_building_at_once(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12_000))
    steps = np.sort(rng.choice(10**6, n, replace=False))
    values = np.round(rng.normal(size=n))  # many ties
    values[rng.random(n) < (0.3 if seed % 4 else 1.0)] = np.nan  # some series are all NaN
    walls = rng.random(n)
    buckets, count = np.zeros(0, rollup.BUCKET), 0
    while count < n:
        new = slice(count, min(n, count + int(rng.integers(1, 3000))))
        added = new.stop - count
        if count:
            buckets = rollup.widen(buckets, rollup.width_for(count + added) // rollup.width_for(count))
            keep = int(rng.integers(0, len(buckets)))  # extending only the tail gives the same buckets
            buckets = np.concatenate([buckets[:keep], rollup.extend(buckets[keep:], count, steps[new], values[new], walls[new])])
        else:
            buckets = rollup.build(steps[new], values[new], walls[new], rollup.width_for(added))
        count = new.stop
    assert buckets.tobytes() == rollup.build(steps, values, walls, rollup.width_for(n)).tobytes()


def test_many_in_order_batches_of_several_keys_give_the_rollup_of_all_their_points(run):
    rng = np.random.default_rng(1)
    values = rng.normal(size=40_000).cumsum()
    values[rng.integers(0, 40_000, 20)] = np.nan
    start = 0
    while start < 40_000:  # batches of every size, across many doublings of the bucket width
        size = int(rng.choice([1, 3, 64, 700, 4_999]))
        points = [MetricPoint(key, step, float(values[step]) * sign, 5.0 + step)
                  for step in range(start, min(start + size, 40_000)) for key, sign in (("loss", 1), ("acc", -1))]
        metrics_log(run_id=run.id, points=points)
        start += size
    assert_rollups_match_points(run, ["loss", "acc"])
    assert len(rollup.decode(stored_rollup(run, "loss"))) <= rollup.MAX_BUCKETS


def test_late_and_backfilled_points_rebuild_the_rollup(run):
    log(run, "loss", range(0, 3000, 2), np.sin(np.arange(1500)))
    log(run, "loss", range(1, 3000, 2), np.cos(np.arange(1500)))  # every gap, filled late
    log(run, "loss", [-5, 1500, 4000], [9.0, 8.0, 7.0])  # before the first, a redelivered step, past the end
    assert_rollups_match_points(run, ["loss"])
    assert MetricSummary.objects.get(run=run, key="loss").last_step == 4000


def test_nan_values_are_kept_as_gaps_and_never_win_a_bucket(run):
    values = np.arange(5000, dtype=float)
    values[1000:3000] = np.nan
    values[4000] = math.nan
    log(run, "loss", range(5000), values)
    assert_rollups_match_points(run, ["loss"])
    assert Metric.objects.get(run=run, key="loss", step=4000).value is None
    buckets = rollup.decode(stored_rollup(run, "loss"))
    low = buckets["value"][:, rollup.LOW]
    assert np.nanmin(low) == 0.0 and np.isnan(low).any()  # all-NaN buckets are gaps; the others hold numbers
    assert not np.isnan(buckets["value"][:, rollup.HIGH][buckets["step"][:, rollup.FIRST] >= 4000]).any()


def test_a_single_point_is_its_own_rollup(run):
    log(run, "loss", [7], [0.5])
    buckets = rollup.decode(stored_rollup(run, "loss"))
    assert buckets["step"].tolist() == [[7, 7, 7, 7]] and buckets["value"].tolist() == [[0.5] * 4]


def test_a_redelivered_batch_changes_nothing_and_a_partly_new_one_only_extends(run):
    rng = np.random.default_rng(2)
    values = rng.normal(size=6000)
    log(run, "loss", range(5000), values[:5000])
    before = stored_rollup(run, "loss")
    assert log(run, "loss", range(4000, 5000), values[4000:5000]) == 0
    assert stored_rollup(run, "loss") == before
    assert log(run, "loss", range(4500, 6000), values[4500:6000] + 100) == 1000  # the old steps keep their values
    assert_rollups_match_points(run, ["loss"])


def test_the_last_write_of_a_step_in_a_batch_wins_everywhere(run):
    metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, 5.0, 1.0), MetricPoint("loss", 0, 4.0, 2.0)])
    assert stored_rollup(run, "loss") == rebuilt_rollup(run, "loss")
    assert rollup.decode(stored_rollup(run, "loss"))["value"].tolist() == [[4.0] * 4]


def test_a_key_stored_before_rollups_gets_one_with_its_next_points(run):
    log(run, "loss", range(3000), np.arange(3000.0))
    MetricRollup.objects.filter(run=run).delete()
    log(run, "loss", range(3000, 3100), np.arange(100.0))
    assert_rollups_match_points(run, ["loss"])


def test_rebuild_restores_a_lost_rollup(run):
    log(run, "loss", range(3000), np.arange(3000.0))
    expected = stored_rollup(run, "loss")
    MetricRollup.objects.filter(run=run).delete()
    assert metric_rollups_rebuild(run_id=run.id) == 1
    assert stored_rollup(run, "loss") == expected


def test_the_overview_keeps_both_spikes_stays_bounded_and_is_deterministic(run):
    values = np.sin(np.arange(200_000) / 3000.0)
    values[123_457] = 40.0
    values[7] = -40.0
    for start in range(0, 200_000, 10_000):
        log(run, "loss", range(start, start + 10_000), values[start : start + 10_000])
    refs = series_refs([run.id], ["loss"])
    first = overviews(refs)[(run.id, "loss")]
    assert len(first.steps) <= SERIES_BUDGET and first.raw_count == 200_000
    assert first.values.max() == 40.0 and first.values.min() == -40.0
    assert {7, 123_457} <= set(first.steps.tolist()) and first.steps[0] == 0 and first.steps[-1] == 199_999
    assert np.all(np.diff(first.steps) > 0)
    again = overviews(refs, 200)[(run.id, "loss")]
    assert len(again.steps) <= 200 and again.values.max() == 40.0 and again.values.min() == -40.0
    assert np.array_equal(overviews(refs)[(run.id, "loss")].steps, first.steps)


def test_a_short_series_is_drawn_whole(run):
    log(run, "loss", range(0, 900, 3), np.arange(300.0))
    series = overviews(series_refs([run.id], ["loss"]))[(run.id, "loss")]
    assert series.steps.tolist() == list(range(0, 900, 3)) and not series.sampled


def test_deleting_a_run_deletes_its_points_and_rollups(run):
    log(run, "loss", range(100), np.arange(100.0))
    Run.objects.filter(id=run.id).update(state=RunState.SUCCEEDED)
    run.refresh_from_db()
    run_delete(user=run.owner, run=run)
    assert not Metric.objects.filter(run_id=run.id).exists() and not MetricRollup.objects.filter(run_id=run.id).exists()


def test_the_database_deletes_the_points_of_a_run_deleted_behind_the_orm(run):
    log(run, "loss", range(100), np.arange(100.0))
    with connection.cursor() as cursor:  # the metric table has no FK; a trigger keeps the cascade
        for table in ("experiments_runevent", "experiments_metricsummary", "experiments_metricrollup"):
            cursor.execute(f"DELETE FROM {table} WHERE run_id = %s", [run.id])  # noqa: S608 -- fixed names
        cursor.execute("DELETE FROM experiments_run WHERE id = %s", [run.id])
    assert not Metric.objects.filter(run_id=run.id).exists()


def test_points_for_a_missing_run_are_refused(run):
    with pytest.raises(Run.DoesNotExist):
        metrics_log(run_id=run.id + 10_000, points=[MetricPoint("loss", 0, 1.0, 1.0)])
    assert not Metric.objects.exists()
