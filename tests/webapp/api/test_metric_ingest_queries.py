"""POST /api/runs/{id}/metrics with a 100-point batch makes a fixed, small set of statements (the cost a script logging every step pays)."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.experiments.models import Metric, MetricRollup, MetricSummary

# transaction=True: the request runs its own transaction, as in production (not a savepoint in the test's)
pytestmark = pytest.mark.django_db(transaction=True)

# On PostgreSQL: token, project, then BEGIN; lock; summaries with last rollup chunks; insert (one pipeline),
# then the summary and rollup upserts and COMMIT (another pipeline): 4 round trips (metrics_pg.folded_transaction).
POSTGRESQL = ["SELECT t.id", "SELECT", "BEGIN", "SELECT", "SELECT s.key", "INSERT INTO", "INSERT INTO", "INSERT INTO", "COMMIT"]


def _batch(first_step: int, steps_per_key: int = 25) -> dict:
    steps = list(range(first_step, first_step + steps_per_key))
    return {"series": [{"key": f"m{k}", "steps": steps, "values": [1.0 / (s + k + 1) for s in steps],
                        "wall_times": [1.7e9 + s for s in steps]} for k in range(4)]}


def _post(world, run, body):
    return world.api("owner").post(f"/api/runs/{run.id}/metrics", body)


def test_a_100_point_batch_makes_a_fixed_number_of_statements(world):
    run = world.submit()
    # summaries exist, the rollups span 8 chunks (the append rewrites only the last), last_used_at is recorded
    assert _post(world, run, _batch(0, 500)).json() == {"received": 2000, "stored": 2000}
    with CaptureQueriesContext(connection) as captured:
        assert _post(world, run, _batch(500)).json() == {"received": 100, "stored": 100}
    statements = [query["sql"] for query in captured.captured_queries]
    if connection.vendor == "postgresql":
        assert [sql for sql in statements if sql != "BEGIN"] == statements[:2] + statements[3:]  # one BEGIN, third
        assert len(statements) == len(POSTGRESQL), "\n".join(s[:60] for s in statements)
        assert all(sql.startswith(prefix) for sql, prefix in zip(statements, POSTGRESQL, strict=True)), statements
    else:
        assert len(statements) == 11, "\n".join(s[:60] for s in statements)  # the ORM path, one statement each
    assert Metric.objects.filter(run=run).count() == 2100
    assert sorted(MetricSummary.objects.filter(run=run).values_list("key", "count", "last_step")) == [
        (f"m{k}", 525, 524) for k in range(4)]
    assert MetricRollup.objects.filter(run=run).count() == 4 * 9


def test_a_resent_batch_stores_nothing_and_keeps_the_summaries(world):
    run = world.submit()
    _post(world, run, _batch(0))
    before = sorted(MetricSummary.objects.filter(run=run).values_list("key", "last", "last_step", "min", "max", "count"))
    assert _post(world, run, _batch(0)).json() == {"received": 100, "stored": 0}
    assert sorted(MetricSummary.objects.filter(run=run).values_list("key", "last", "last_step", "min", "max", "count")) == before


def test_an_outsider_stores_nothing_and_takes_no_lock(world):
    run = world.submit()
    with CaptureQueriesContext(connection) as captured:
        response = world.api("outsider").post(f"/api/runs/{run.id}/metrics", _batch(0))
    assert response.status_code == 404
    assert not any("FOR UPDATE" in query["sql"] or query["sql"].startswith("INSERT") for query in captured.captured_queries)
    assert not Metric.objects.filter(run=run).exists()


def test_a_body_with_nan_only_values_stores_null_summaries(world):
    run = world.submit()
    body = json.loads(json.dumps({"key": "loss", "steps": [0, 1], "values": ["NaN", "NaN"]}))
    assert _post(world, run, body).json() == {"received": 2, "stored": 2}
    assert list(MetricSummary.objects.filter(run=run).values_list("last", "min", "max", "count")) == [(None, None, None, 2)]


@pytest.mark.parametrize(("kind", "values"), [
    ("float8", [1.5, -0.0, float("inf"), float("-inf"), 1e-308, 2.5e300]),
    ("float8", [None, 3.25, None]),
    ("float8", []),
    ("int8", [0, -1, 2**62, -(2**62)]),
    ("int8", [7, None]),
    ("int4", [0, 2**31 - 1, -(2**31)]),
    ("varchar", ["loss", "sys/gpu0/util_percent", "ünïcødé ✓", "", None]),
    ("bytea", [b"", b"\x00\xff\x10", None]),
])
def test_binary_arrays_read_back_as_sent(kind, values):
    """The ingest path's array parameters (`metrics_pg.pg_array`) are what psycopg's own encoding would send."""
    from webapp.experiments import metrics_pg

    if connection.vendor != "postgresql":
        assert metrics_pg.pg_array(values, kind).data  # built anyway; only PostgreSQL reads them
        return
    connection.ensure_connection()
    with psycopg.Cursor(metrics_pg._adapted(connection.connection)) as raw:  # server-side binding, as metrics_pg
        raw.execute(f"SELECT %b::{kind}[]", [metrics_pg.pg_array(values, kind)], binary=True)
        got = raw.fetchone()[0]
    assert [bytes(v) if isinstance(v, memoryview) else v for v in got] == values


def test_nan_travels_in_a_binary_float_array():
    from webapp.experiments import metrics_pg

    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    with psycopg.Cursor(metrics_pg._adapted(connection.connection)) as raw:
        raw.execute("SELECT v = 'NaN'::float8 FROM unnest(%b::float8[]) v", [metrics_pg.pg_array(np.array([np.nan]), "float8")])
        assert raw.fetchall() == [(True,)]


def _idle() -> bool:
    if connection.vendor != "postgresql":
        return not connection.in_atomic_block
    return connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_batch_for_a_missing_run_stores_nothing_and_leaves_no_transaction_open(world):
    from webapp.experiments.models import Run
    from webapp.experiments.results import metrics_log_series

    run = world.submit()
    steps = np.arange(3)
    with pytest.raises(Run.DoesNotExist):
        metrics_log_series(run_id=run.id + 1000, series=[("loss", steps, np.ones(3), np.full(3, 1.7e9))])
    assert _idle() and connection.get_autocommit()
    assert not Metric.objects.exists()
    assert metrics_log_series(run_id=run.id, series=[("loss", steps, np.ones(3), np.full(3, 1.7e9))]) == 3


def test_a_failure_between_the_pipelines_rolls_the_batch_back(world, monkeypatch):
    from webapp.experiments import results

    run = world.submit()
    steps = np.arange(5)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(results, "_summaries_update", broken)
    with pytest.raises(RuntimeError, match="boom"):
        results.metrics_log_series(run_id=run.id, series=[("loss", steps, np.ones(5), np.full(5, 1.7e9))])
    assert _idle() and connection.get_autocommit()
    assert not Metric.objects.filter(run=run).exists()  # the pipelined insert was undone with the rest
    monkeypatch.undo()
    assert results.metrics_log_series(run_id=run.id, series=[("loss", steps, np.ones(5), np.full(5, 1.7e9))]) == 5
    assert MetricSummary.objects.get(run=run, key="loss").count == 5
