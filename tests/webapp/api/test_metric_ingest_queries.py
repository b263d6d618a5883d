"""POST /api/runs/{id}/metrics with a 100-point batch makes a fixed, small set of statements (the cost a script logging every step pays)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.experiments.models import Metric, MetricRollup, MetricSummary

# transaction=True: the request runs its own transaction, as in production (not a savepoint in the test's)
pytestmark = pytest.mark.django_db(transaction=True)

# On PostgreSQL: token, project, then BEGIN; lock; summaries with last rollup chunks; insert (one pipeline),
# then the summary and rollup upserts (another pipeline), COMMIT: 6 round trips.
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
