"""Compacting old runs' metrics (`metrics_compact`, `kiln compact-metrics`): charts and summaries stay, raw points go."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from webapp.accounts.tokens import token_create
from webapp.client import cli
from webapp.dashboards.series import SERIES_BUDGET, overviews, series_refs
from webapp.experiments import rollup
from webapp.experiments.models import Metric, MetricRollup, MetricSummary, Run, RunState
from webapp.experiments.results import metrics_log_series
from webapp.experiments.retention import metrics_compact
from webapp.experiments.submit import run_submit

from .factories import ProjectFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
CUTOFF = NOW - timedelta(days=90)


@pytest.fixture
def project():
    return ProjectFactory()


def make_run(project, state=RunState.SUCCEEDED, finished_days_ago: float | None = 100) -> Run:
    run = run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]
    finished_at = None if finished_days_ago is None else NOW - timedelta(days=finished_days_ago)
    Run.objects.filter(id=run.id).update(state=state, finished_at=finished_at)
    return Run.objects.get(id=run.id)


def log_series(run, seed=0) -> None:
    """A 5,000-point loss with spikes and NaNs, a system metric, and a series short enough to be kept whole,
    logged through ingestion in batches (so the rollups are extended and widened as they grow)."""
    rng = np.random.default_rng(seed)
    n = 5000
    loss = np.exp(-np.arange(n) / 1000) + rng.normal(0, 0.01, n)
    loss[rng.choice(n, 25, replace=False)] += rng.choice([-5.0, 50.0], 25)  # spikes both ways
    loss[rng.choice(n, 10, replace=False)] = np.nan
    steps = np.arange(n, dtype=np.int64) * 10
    cpu = rng.uniform(0, 100, 3000)
    for start in range(0, n, 700):
        part = slice(start, start + 700)
        series = [("loss", steps[part], loss[part], 1e9 + steps[part].astype(float))]
        if start < len(cpu):
            series.append(("sys/cpu_percent", np.arange(start, min(start + 700, len(cpu))), cpu[part],
                           2e9 + np.arange(start, min(start + 700, len(cpu)), dtype=float)))
        metrics_log_series(run_id=run.id, series=series)
    metrics_log_series(run_id=run.id, series=[("lr", np.arange(10), np.full(10, 0.1), np.arange(10.0))])


def points(run) -> dict[str, list[tuple]]:
    rows = Metric.objects.filter(run=run).order_by("key", "step").values_list("key", "step", "value", "wall_time")
    out: dict[str, list[tuple]] = {}
    for key, step, value, wall in rows:
        out.setdefault(key, []).append((step, value, wall))
    return out


def rollup_points(run) -> dict[str, list[tuple]]:
    """What each stored rollup keeps, as (step, value or None for NaN, wall) rows."""
    out = {}
    for summary in MetricSummary.objects.filter(run=run):
        rows = MetricRollup.objects.filter(run=run, key=summary.key).values_list("chunk", "buckets")
        buckets = rollup.joined(list(rows), 0, summary.count, summary.last_step)
        assert buckets is not None
        steps, values, walls = rollup.points(buckets)
        out[summary.key] = [(s, None if np.isnan(v) else v, w) for s, v, w in zip(steps.tolist(), values.tolist(), walls.tolist(), strict=True)]
    return out


def charts(run) -> list:
    """The overviews charts draw (at the default budget and a small one), as plain lists."""
    drawn = []
    for budget in (SERIES_BUDGET, 100):
        for name, series in sorted(overviews(series_refs([run.id]), budget).items()):
            drawn.append((name, budget, series.steps.tolist(), np.nan_to_num(series.values, nan=-1e300).tolist(),
                          series.walls.tolist(), series.raw_count))
    return drawn


def summaries(run) -> list:
    return list(MetricSummary.objects.filter(run=run).order_by("key").values_list("key", "last", "last_step", "min", "max", "count"))


class Api:
    def __init__(self, user):
        self.client, self.token = Client(), token_create(user=user, name="tests")[1]

    def get(self, path, params=None):
        response = self.client.get(path, params or {}, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.content
        return response.json()

    def charted(self, run) -> list:
        """What the API serves for the run's charts and run table: each key's whole history, and the summaries."""
        keys = self.get(f"/api/runs/{run.id}/metrics")
        return [keys] + [self.get(f"/api/runs/{run.id}/metrics/history", {"key": k["key"]}) for k in keys]


def test_compaction_keeps_exactly_the_rollups_points_and_charts_and_summaries_do_not_change(project):
    run = make_run(project)
    log_series(run)
    api = Api(project.owner_user)
    before_points, kept = points(run), rollup_points(run)
    before_charts, before_summaries, before_api = charts(run), summaries(run), api.charted(run)
    assert len(before_points["loss"]) == 5000 and len(kept["loss"]) < 4 * rollup.MAX_BUCKETS
    assert len(kept["lr"]) == 10  # short enough: every point is its own bucket

    report = metrics_compact(finished_before=CUTOFF)

    after = points(run)
    assert after == kept  # exactly the rollups' points, sys/ series too
    assert charts(run) == before_charts and summaries(run) == before_summaries and api.charted(run) == before_api
    total_before = sum(map(len, before_points.values()))
    total_after = sum(map(len, after.values()))
    assert (report.runs, report.deleted, report.kept, report.left_whole) == (1, total_before - total_after, total_after, 0)
    assert len(after["loss"]) < 2600  # at most 4 of each 8-point bucket
    compacted_at = Run.objects.get(id=run.id).metrics_compacted_at
    assert compacted_at is not None and NOW <= compacted_at <= timezone.now()
    assert api.get(f"/api/runs/{run.id}")["metrics_compacted_at"] is not None
    # range reads return the kept points
    zoom = api.get(f"/api/runs/{run.id}/metrics/history", {"key": "loss", "step_min": 1000, "step_max": 20000})
    assert zoom["steps"] == [step for step, _, _ in kept["loss"] if 1000 <= step <= 20000]


def test_runs_not_final_or_finished_too_recently_are_untouched(project):
    running = make_run(project, RunState.RUNNING, finished_days_ago=None)
    recent = make_run(project, RunState.SUCCEEDED, finished_days_ago=30)
    paused = make_run(project, RunState.PAUSED, finished_days_ago=200)  # not final: it may be promoted and resume
    for seed, run in enumerate((running, recent, paused)):
        log_series(run, seed)
    before = {run.id: points(run) for run in (running, recent, paused)}

    report = metrics_compact(finished_before=CUTOFF)

    assert (report.runs, report.deleted) == (0, 0)
    for run in (running, recent, paused):
        assert points(run) == before[run.id]
        assert Run.objects.get(id=run.id).metrics_compacted_at is None


def test_a_dry_run_deletes_nothing_but_counts_the_same(project):
    runs = [make_run(project, state) for state in (RunState.FAILED, RunState.CANCELLED, RunState.STOPPED_EARLY)]
    for seed, run in enumerate(runs):
        log_series(run, seed)
    before = {run.id: points(run) for run in runs}

    dry = metrics_compact(finished_before=CUTOFF, dry_run=True)

    assert all(points(run) == before[run.id] for run in runs)
    assert not Run.objects.filter(metrics_compacted_at__isnull=False).exists()
    real = metrics_compact(finished_before=CUTOFF)
    assert (dry.runs, dry.deleted, dry.kept) == (real.runs, real.deleted, real.kept) == (3, dry.deleted, dry.kept)
    assert dry.deleted > 3 * 2400 and dry.dry_run and not real.dry_run
    assert "would delete" in dry.lines()[0] and "deleted" in real.lines()[0]


def test_a_second_compaction_deletes_nothing_more(project):
    run = make_run(project)
    log_series(run)
    assert metrics_compact(finished_before=CUTOFF).deleted > 0
    after = points(run)

    again = metrics_compact(finished_before=NOW)

    assert (again.runs, again.deleted) == (0, 0) and points(run) == after


def test_only_the_project_given_is_compacted(project):
    mine, other = make_run(project), make_run(ProjectFactory())
    log_series(mine)
    log_series(other, 1)
    theirs = points(other)

    assert metrics_compact(finished_before=CUTOFF, project=project).runs == 1

    assert points(other) == theirs and points(mine) == rollup_points(mine)


def test_a_series_whose_rollup_is_stale_keeps_every_point(project):
    run = make_run(project)
    log_series(run)
    MetricRollup.objects.filter(run=run, key="sys/cpu_percent").delete()  # as a series stored before rollups
    cpu = points(run)["sys/cpu_percent"]

    report = metrics_compact(finished_before=CUTOFF)

    assert report.left_whole == 1 and points(run)["sys/cpu_percent"] == cpu
    assert len(points(run)["loss"]) < 5000
    assert "1 series left whole" in report.lines()[1]


@pytest.fixture
def cli_in_tests(monkeypatch):
    """The CLI in this process, where Django is set up already: setting it up again would bind logging's
    handlers to this test's captured stderr, which later tests' logging would then write to once closed."""
    monkeypatch.setattr(cli, "_django", lambda: None)


@pytest.mark.usefixtures("cli_in_tests")
def test_the_cli_compacts_what_is_old_enough(project, capsys):
    old, recent = make_run(project), make_run(project, finished_days_ago=10)
    log_series(old)
    log_series(recent, 1)
    kept, untouched = rollup_points(old), points(recent)
    path = f"{project.owner_user.username}/{project.slug}"

    assert cli.main(["compact-metrics", "--older-than", "90d", "--project", path, "--dry-run"]) == 0
    assert "1 run(s) to compact: would delete" in capsys.readouterr().out
    assert cli.main(["compact-metrics", "--older-than", "30", "--project", str(project.id)]) == 0

    assert "1 run(s) compacted: deleted" in capsys.readouterr().out
    assert points(old) == kept and points(recent) == untouched


@pytest.mark.usefixtures("cli_in_tests")
@pytest.mark.parametrize("age", ["-5", "-1d", "ninety", "90x", "d", "nan", "1e9"])
def test_the_cli_refuses_a_bad_age(project, capsys, age):
    run = make_run(project)
    log_series(run)
    before = points(run)

    with pytest.raises(SystemExit) as exited:
        cli.main(["compact-metrics", "--older-than", age])

    assert exited.value.code == 2
    assert "--older-than" in capsys.readouterr().err
    assert points(run) == before


@pytest.mark.usefixtures("cli_in_tests")
def test_the_cli_refuses_an_unknown_project(project, capsys):
    run = make_run(project)
    log_series(run)
    before = points(run)

    assert cli.main(["compact-metrics", "--older-than", "90", "--project", "nobody/nothing"]) == 2

    assert "no project 'nobody/nothing'" in capsys.readouterr().err
    assert points(run) == before and Run.objects.get(id=run.id).metrics_compacted_at is None
