"""System metrics (sys/*) are series over wall time: numbered samples, charted against their wall_time.

Covers their storage (each attempt continues the run's sample sequence; a resent sample is stored
once; a resume never supersedes them), the run page's feed, the run table's default columns and
the data migration that renumbers rows stored with a unix timestamp as their step.
"""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.http import QueryDict

from tests.webapp.test_metric_rollup import assert_rollups_match_points
from webapp.experiments.live import metric_series
from webapp.experiments.models import Metric, MetricSummary, Run, SupersededMetric
from webapp.experiments.results import MetricPoint, is_system, metrics_log, system_next_step
from webapp.experiments.run_columns import MAX_DEFAULT_PARAMS, default_columns
from webapp.experiments.run_table import RunFilters, run_table_page
from webapp.experiments.submit import run_submit
from webapp.experiments.superseding import metrics_supersede_after
from worker.sysmetrics import SystemSampler

from .factories import ProjectFactory

pytestmark = pytest.mark.django_db
T0 = 1_796_155_671.0  # a unix time, as the old rows used for their step
migration = importlib.import_module("webapp.experiments.migrations.0010_system_metrics_time")


@pytest.fixture
def run():
    project = ProjectFactory()
    return run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]


def test_the_sampler_numbers_its_samples_from_the_step_it_is_given_and_stamps_them_with_the_time():
    sampler = SystemSampler(lambda: [], gpu_indices=[], first_step=7)
    first, second = sampler.sample(), sampler.sample()
    assert {p.step for p in first} == {7} and {p.step for p in second} == {8}
    assert all(abs(p.wall_time - T0) < 10 * 365 * 86400 for p in first)  # seconds since the epoch, not a step
    with pytest.raises(ValueError, match="first_step"):
        SystemSampler(lambda: [], gpu_indices=[], first_step=-1)


def test_a_new_attempt_continues_the_runs_system_sequence_and_a_resent_sample_is_stored_once(run):
    assert system_next_step(run.id) == 0
    sampler = SystemSampler(lambda: [], gpu_indices=[], first_step=system_next_step(run.id))
    batch = sampler.sample()
    assert metrics_log(run_id=run.id, points=batch) == 3
    assert metrics_log(run_id=run.id, points=batch) == 0  # a retried batch: idempotent
    metrics_log(run_id=run.id, points=sampler.sample())
    metrics_log(run_id=run.id, points=[MetricPoint("loss", 5000, 0.5, T0)])  # training steps do not count
    assert system_next_step(run.id) == 2
    later = SystemSampler(lambda: [], gpu_indices=[], prefix="sys/node1/", first_step=system_next_step(run.id))
    assert metrics_log(run_id=run.id, points=later.sample()) == 3  # nothing collides, every sample is kept
    assert sorted(Metric.objects.filter(run=run, key="sys/node1/processes").values_list("step", flat=True)) == [2]
    assert MetricSummary.objects.get(run=run, key="sys/cpu_percent").last_step == 1


def test_a_resumed_attempt_supersedes_training_points_but_keeps_every_system_sample(run):
    metrics_log(run_id=run.id, points=[MetricPoint("loss", s, 1.0 / (s + 1), T0 + s) for s in range(50)]
                + [MetricPoint("sys/cpu_percent", s, 10.0 + s, T0 + s) for s in range(50)])
    Run.objects.filter(id=run.id).update(attempt=2)
    assert metrics_supersede_after(run_id=run.id, step=9, attempt=2) == 40
    assert Metric.objects.filter(run=run, key="sys/cpu_percent").count() == 50
    assert not SupersededMetric.objects.filter(key__startswith="sys/").exists()
    # attempt 1's late samples still count (they were measured then); its late training points do not
    metrics_log(run_id=run.id, points=[MetricPoint("sys/cpu_percent", 50, 1.0, T0 + 50), MetricPoint("loss", 30, 9.0, T0)],
                attempt=1)
    assert Metric.objects.filter(run=run, key="sys/cpu_percent").count() == 51
    assert not Metric.objects.filter(run=run, key="loss", step=30).exists()


def test_the_run_pages_feed_gives_system_series_their_wall_times(run):
    metrics_log(run_id=run.id, points=[MetricPoint("sys/gpu0/util_percent", s, 90.0, T0 + 5 * s) for s in range(4)]
                + [MetricPoint("loss", s, 1.0, T0 + s) for s in range(4)])
    series = metric_series(run)
    assert series["sys/gpu0/util_percent"]["wall_times"] == [T0 + 5 * s for s in range(4)]
    assert series["sys/gpu0/util_percent"]["steps"] == [0, 1, 2, 3]
    assert "wall_times" not in series["loss"]
    metrics_log(run_id=run.id, points=[MetricPoint("sys/gpu0/util_percent", 4, 80.0, T0 + 20)])
    newer = metric_series(run, since={"sys/gpu0/util_percent": 3, "loss": 3})
    assert newer == {"sys/gpu0/util_percent": {"steps": [4], "values": [80.0], "wall_times": [T0 + 20]}}


def test_the_run_table_leaves_system_metrics_out_of_its_default_columns(run):
    metrics_log(run_id=run.id, points=[MetricPoint("sys/cpu_percent", 0, 50.0, T0), MetricPoint("loss", 0, 0.5, T0)])
    assert run_table_page(run.project, RunFilters.from_query(QueryDict())).metric_keys == ["loss"]
    sorted_on = run_table_page(run.project, RunFilters.from_query(QueryDict("sort=-metric:sys/cpu_percent")))
    assert sorted_on.metric_keys[0] == "sys/cpu_percent"  # asked for: shown
    assert is_system("sys/node1/memory_mb") and not is_system("system_loss")


def test_the_migration_renumbers_timestamp_steps_and_rebuilds_summaries_and_rollups(run):
    other = run_submit(user=run.owner, project=run.project, spec={"recipe": {"model": "mlp"}}).runs[0]
    stamps = [int(T0) + 10 * i for i in range(1500)]  # enough for a rollup of several chunks
    metrics_log(run_id=run.id, points=[MetricPoint("sys/cpu_percent", s, float(i % 7), s + 0.25) for i, s in enumerate(stamps)])
    metrics_log(run_id=run.id, points=[MetricPoint("sys/node1/memory_mb", s, 2048.0, s + 0.5) for s in stamps[:3]])
    metrics_log(run_id=other.id, points=[MetricPoint("sys/processes", 1, 1.0, T0), MetricPoint("sys/processes", 2, 2.0, T0 + 1)])
    metrics_log(run_id=run.id, points=[MetricPoint("loss", s, 1.0, T0) for s in range(3)])
    assert MetricSummary.objects.get(run=run, key="sys/cpu_percent").last_step == stamps[-1]

    migration.renumber(apps, SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name))

    cpu = list(Metric.objects.filter(run=run, key="sys/cpu_percent").order_by("step").values_list("step", "value", "wall_time"))
    assert [row[0] for row in cpu] == list(range(1500))
    assert [row[2] for row in cpu] == [s + 0.25 for s in stamps]  # the time stays, in wall_time
    assert [row[1] for row in cpu] == [float(i % 7) for i in range(1500)]
    assert list(Metric.objects.filter(run=run, key="sys/node1/memory_mb").order_by("step").values_list("step", flat=True)) == [0, 1, 2]
    assert list(Metric.objects.filter(run=other, key="sys/processes").order_by("step").values_list("step", "value")) == [(0, 1.0), (1, 2.0)]
    assert list(Metric.objects.filter(run=run, key="loss").order_by("step").values_list("step", flat=True)) == [0, 1, 2]
    summary = MetricSummary.objects.get(run=run, key="sys/cpu_percent")
    assert (summary.last_step, summary.count, summary.min, summary.max, summary.last) == (1499, 1500, 0.0, 6.0, float(1499 % 7))
    assert_rollups_match_points(run, ["sys/cpu_percent", "sys/node1/memory_mb", "loss"])
    assert_rollups_match_points(other, ["sys/processes"])
    # the rebuilt rollup draws the series: steps are sample numbers, the times come along
    series = metric_series(Run.objects.get(id=run.id))["sys/cpu_percent"]
    assert max(series["steps"]) == 1499 and min(series["wall_times"]) == stamps[0] + 0.25

    migration.renumber(apps, SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name))  # a rerun changes nothing
    assert list(Metric.objects.filter(run=other, key="sys/processes").order_by("step").values_list("step", flat=True)) == [0, 1]


def test_the_default_param_columns_are_those_that_vary_most():
    # nine sweep trials searching lr, and one code run lacking the recipe's params
    trials = [SimpleNamespace(number=i, params={"optimizer.lr": 10.0 ** -i, "batch_size": 8, "dataset": "digits",
                                                "dropout": 0.0, "epochs": 9, "hidden_size": 32 * (1 + i % 3), "layers": 2,
                                                "model": "mlp"}, summaries=SimpleNamespace(all=list))
              for i in range(9)]
    code_run = SimpleNamespace(number=10, params={"lr": 0.003}, summaries=SimpleNamespace(all=list))
    params = [column for column in default_columns([*trials, code_run]) if column.startswith("param:")]
    assert params[:2] == ["param:optimizer.lr", "param:hidden_size"]
    assert len(params) == MAX_DEFAULT_PARAMS and "param:lr" not in params  # the rest vary alike: by name
