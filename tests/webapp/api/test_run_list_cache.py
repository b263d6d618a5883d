"""The run list's cached pages (`webapp.api.run_list_cache`) never show a page from before a change.

These tests commit (transactional database): PostgreSQL changes a project's `runs_version` as a transaction
commits, and inside a transaction the list is built rather than cached.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from webapp.experiments.lifecycle import run_delete, run_transition
from webapp.experiments.models import Run, RunState, RunTag
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.projects.models import Project
from webapp.projects.runs_cache import project_runs_cached

from ..factories import ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _version(project: Project) -> int:
    return Project.objects.values_list("runs_version", flat=True).get(id=project.id)


def _page_queries(queries: CaptureQueriesContext) -> int:
    return sum("WITH page" in query["sql"] for query in queries.captured_queries)


def test_every_change_to_a_projects_runs_changes_its_version_and_no_other(world):
    other = ProjectFactory(owner_user=world.users["owner"], slug="other")
    seen = [_version(world.project)]

    def changed() -> None:
        now = _version(world.project)
        assert now > seen[-1]
        seen.append(now)

    run = world.submit()
    changed()
    for before, state in ((RunState.QUEUED, RunState.SCHEDULED), (RunState.SCHEDULED, RunState.RUNNING)):
        run_transition(run_id=run.id, from_states=(before,), to_state=state)
        changed()
    metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, 0.5, 0.0)])  # a metric summary
    changed()
    RunTag.objects.create(run=run, name="baseline")
    changed()
    RunTag.objects.filter(run=run).delete()
    changed()
    owner = get_user_model().objects.get(id=run.owner_id)
    owner.username = "renamed"
    owner.save()
    changed()
    stale = Project.objects.get(id=world.project.id)
    stale.runs_version = 0
    stale.save()  # an ORM save of an old copy never sets the version back
    assert _version(world.project) == seen[-1]
    run_transition(run_id=run.id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED)
    changed()
    run_delete(user=world.users["owner"], run=Run.objects.get(id=run.id))
    changed()
    assert _version(other) == 0


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the once-per-transaction bump is PostgreSQL's")
def test_a_transaction_changes_the_version_once_at_its_commit(world):
    run = world.submit()
    before = _version(world.project)
    with transaction.atomic():
        for step in range(3):
            metrics_log(run_id=run.id, points=[MetricPoint(key, step, 0.5, 0.0) for key in ("a", "b", "c")])
        RunTag.objects.create(run=run, name="x")
        assert _version(world.project) == before  # not before the commit
    assert _version(world.project) == before + 1


def test_the_cached_list_answers_from_the_cache_and_shows_each_change_at_once(world):
    api = world.api("owner")
    path = f"/api/runs?project={world.project.id}&limit=10"
    run = world.submit()

    def page() -> dict:
        response = api.get(path)
        assert response.status_code == 200, response.content
        return response.json()

    first = page()
    with CaptureQueriesContext(connection) as queries:
        assert page() == first
    assert _page_queries(queries) == 0  # the second read came from the cache
    assert api.post(f"/api/runs/{run.id}/metrics", {"points": [{"key": "loss", "step": 0, "value": 0.25}]}).status_code == 200
    assert page()["items"][0]["metrics"]["loss"]["last"] == 0.25
    RunTag.objects.create(run=run, name="best")
    assert page()["items"][0]["tags"] == ["best"]
    assert api.post(f"/api/runs/{run.id}/cancel").status_code == 200
    assert page()["items"][0]["state"] == RunState.CANCELLED
    world.submit()
    listed = page()
    assert listed["count"] == 2 and [item["number"] for item in listed["items"]] == [2, 1]
    Project.objects.filter(id=world.project.id).update(slug="renamed")
    assert {item["project"] for item in page()["items"]} == {f"{world.project.owner_user.username}/renamed"}
    other_page = api.get(f"/api/runs?project={world.project.id}&limit=1&offset=1").json()
    assert other_page["count"] == 2 and [item["number"] for item in other_page["items"]] == [1]


def test_inside_a_transaction_the_list_is_built_not_cached(world):
    api = world.api("owner")
    world.submit()
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            api.get(f"/api/runs?project={world.project.id}")
            api.get(f"/api/runs?project={world.project.id}")
        assert _page_queries(queries) == 2


def test_a_project_id_handed_out_again_by_a_new_database_never_meets_the_old_entries(world):
    # a database made again (a benchmark's, a test run's) repeats ids and versions; the creation time differs
    project = Project.objects.get(id=world.project.id)
    assert project_runs_cached(project, "test", "", lambda: (b"old database", True)) == b"old database"
    assert project_runs_cached(project, "test", "", lambda: (b"built again", True)) == b"old database"
    project.created_at += timedelta(seconds=1)
    assert project_runs_cached(project, "test", "", lambda: (b"new database", True)) == b"new database"
