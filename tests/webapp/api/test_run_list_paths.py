"""The run list's two SQL paths (a project's runs newest first, and any query or sort) answer alike."""

from __future__ import annotations

import math
import time
import uuid

import pytest

from webapp import ratelimit
from webapp.experiments.models import MetricSummary
from webapp.experiments.results import MetricPoint, metrics_log


def _seed(world, count):
    runs = []
    for i in range(count):
        run = world.submit({"recipe": {"model": "mlp"}, "params": {"i": i, "lr": 0.1 / (i + 1)}, "tags": ["z", "a"]})
        metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, 1.0 + i, 0.0), MetricPoint("acc", 3, 0.5, 0.0)])
        runs.append(run)
    return runs


def _page(api, params):
    response = api.get("/api/runs", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(("offset", "limit"), [(0, 50), (0, 3), (3, 3), (6, 3), (7, 3), (50, 3)])
def test_the_project_fast_path_matches_the_general_path(world, offset, limit):
    _seed(world, 7)
    api = world.api("viewer")
    fast = _page(api, {"project": world.path, "offset": offset, "limit": limit})
    general = _page(api, {"project": world.path, "offset": offset, "limit": limit, "sort": "-id"})
    assert fast == general
    assert fast["count"] == 7
    assert len(fast["items"]) == max(0, min(limit, 7 - offset))
    assert [item["number"] for item in fast["items"]] == sorted((item["number"] for item in fast["items"]), reverse=True)


def test_rows_carry_sorted_tags_summaries_and_the_project_path(world):
    run = _seed(world, 1)[0]
    MetricSummary.objects.filter(run=run, key="loss").update(min=math.inf, max=-math.inf)  # never JSON numbers
    for params in ({"project": world.path}, {"project": world.path, "query": "tags = a"}, {}):
        (item,) = _page(world.api("owner"), params)["items"]
        assert item["tags"] == ["a", "z"]
        assert item["project"] == world.path and item["owner"] == world.users["owner"].username
        assert item["params"]["i"] == 0 and item["params"]["lr"] == 0.1
        assert item["metrics"]["acc"] == {"last": 0.5, "last_step": 3, "min": 0.5, "max": 0.5, "count": 1}
        assert item["metrics"]["loss"] == {"last": 1.0, "last_step": 0, "min": None, "max": None, "count": 1}
        assert item["progress"] == {} and item["created_at"].endswith("Z")


def test_a_sorted_page_keeps_the_sort_order_and_counts_all_matches(world):
    _seed(world, 6)
    page = _page(world.api("owner"), {"project": world.path, "sort": "params.lr", "limit": 4, "offset": 1})
    assert page["count"] == 6 and page["next_offset"] == 5
    assert [item["params"]["i"] for item in page["items"]] == [4, 3, 2, 1]
    page = _page(world.api("owner"), {"project": world.path, "query": "params.i >= 2", "sort": "-metrics.loss"})
    assert page["count"] == 4 and [item["params"]["i"] for item in page["items"]] == [5, 4, 3, 2]


def test_the_file_rate_limit_counts_exactly_and_sweeps_ended_windows(settings, tmp_path, monkeypatch):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                   "LOCATION": str(tmp_path / "cache")}}
    bucket = f"test:{uuid.uuid4().hex}"
    assert [ratelimit.hit(bucket, limit=(3, 60)) for _ in range(3)] == [None, None, None]
    retry_after = ratelimit.hit(bucket, limit=(3, 60))
    assert retry_after is not None and 1 <= retry_after <= 60
    assert ratelimit.hit(f"{bucket}-other", limit=(3, 60)) is None  # per bucket
    folder = tmp_path / "cache" / "ratelimit"
    assert len(list(folder.iterdir())) == 2
    later = time.time() + 120
    monkeypatch.setattr(ratelimit.time, "time", lambda: later)
    assert ratelimit.hit(bucket, limit=(3, 60)) is None  # a new window starts from zero
    assert len(list(folder.iterdir())) == 1  # and the ended windows are gone


def test_the_project_page_is_counted_from_an_index_only_scan(world):
    """The fast path's page and count read the project's live runs from `run_project_live_id` alone."""
    from django.db import connection

    from webapp.experiments import selectors

    _seed(world, 3)
    captured = {}

    def spy(sql, params):
        captured.update(sql=sql, params=params)
        return original(sql, params)

    original = selectors.fetch_fixed
    selectors.fetch_fixed = spy
    try:
        selectors.project_run_page(world.project, offset=0, limit=50)
    finally:
        selectors.fetch_fixed = original
    if connection.vendor != "postgresql":
        return  # SQLite plans as it likes; the index exists there too
    with connection.cursor() as cursor:
        # a test table is tiny, so the planner may pick anything: ask whether the index can serve the page alone
        for method in ("seqscan", "indexscan", "bitmapscan"):
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute("EXPLAIN " + captured["sql"], captured["params"])
        plan = [row[0] for row in cursor.fetchall()]
    assert any("Index Only Scan" in line and "run_project_live_id" in line for line in plan), "\n".join(plan)
