"""The compare view's series answer comes from the shared cache until the project's runs change
(`webapp.projects.runs_cache`). These tests commit: inside a transaction the answer is built, not kept."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, metrics_log

pytestmark = pytest.mark.django_db(transaction=True)


def _rollup_reads(queries: CaptureQueriesContext) -> int:
    return sum("experiments_metricrollup" in query["sql"] for query in queries.captured_queries)


def test_a_second_look_is_answered_from_the_cache_and_a_new_point_shows_at_once(world):
    client = world.client("viewer")
    url = f"/p/{world.project.id}/compare/data/?runs={world.run_ids}&key=loss"
    first = client.get(url)
    assert first.status_code == 200 and not first.json()["pending"]
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url)
    assert again.content == first.content and _rollup_reads(queries) == 0
    run = world.runs[0]
    metrics_log(run_id=run.id, points=[MetricPoint("loss", 1000, 42.0, 1_700_001_000.0)])
    series = {item["run"]: item for item in client.get(url).json()["series"]}
    assert series[run.id] != {item["run"]: item for item in first.json()["series"]}[run.id]
    Run.objects.filter(id=run.id).update(name="renamed")  # what the runs show changes too
    assert client.get(url).content != again.content


def test_each_question_has_its_own_answer(world):
    client = world.client("owner")
    base = f"/p/{world.project.id}/compare/data/?runs={world.run_ids}"
    loss, epoch = client.get(base + "&key=loss").json(), client.get(base + "&key=epoch").json()
    assert loss["keys"] == ["loss"] and epoch["keys"] == ["epoch"]
    one = client.get(f"/p/{world.project.id}/compare/data/?runs={world.runs[0].id}&key=loss").json()
    assert {item["run"] for item in one["series"]} == {world.runs[0].id}
