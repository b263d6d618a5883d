"""The sweep page's live feed: members only, like the page; 304 with no body while nothing changed; the
new state, rungs and trials once something did; `final` once the sweep is over."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import MetricPoint, metrics_log

from .conftest import ACTORS, SEES, log_curve

pytestmark = pytest.mark.django_db


def _url(world, query: str = "") -> str:
    return reverse("dashboards:sweep_data", args=[world.project.id, world.sweep.id]) + query


@pytest.mark.parametrize("actor", ACTORS)
def test_the_feed_opens_to_those_who_see_the_project_only(world, actor):
    response = world.client(actor).get(_url(world))
    assert response.status_code == (200 if actor in SEES else 404)


def test_an_unchanged_sweep_answers_304_cheaply_and_a_change_brings_the_new_state(world):
    client = world.client("viewer")
    run = world.sweep_runs[0]
    Run.objects.filter(id=run.id).update(state=RunState.RUNNING, finished_at=None)
    first = client.get(_url(world))
    body = first.json()
    assert first.status_code == 200 and first["ETag"] == f'"{body["version"]}"'
    assert body["final"] is False and len(body["runs"]) == 3
    assert f'data-run="{run.id}" data-state="running"' in body["html"]["trials-box"]

    with CaptureQueriesContext(connection) as queries:
        again = client.get(_url(world), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again.content == b""
    assert len(queries) <= 8, [q["sql"] for q in queries.captured_queries]  # session, access, sweep, its version
    weak = client.get(_url(world), HTTP_IF_NONE_MATCH="W/" + first["ETag"])  # as gzip sent it
    assert weak.status_code == 304

    log_curve(run, "loss", [0.4, 0.3], start=2)  # a new point is a new version
    moved = client.get(_url(world), HTTP_IF_NONE_MATCH=first["ETag"])
    assert moved.status_code == 200 and moved.json()["version"] != body["version"]
    run_transition(run_id=run.id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED, reason="done")
    done = client.get(_url(world), HTTP_IF_NONE_MATCH=moved["ETag"]).json()
    assert f'data-run="{run.id}" data-state="succeeded"' in done["html"]["trials-box"]
    assert "3 succeeded" in done["html"]["sweep-status"] and done["final"] is True


def test_the_page_carries_the_version_its_first_poll_sends(world):
    client = world.client("owner")
    page = client.get(reverse("dashboards:sweep", args=[world.project.id, world.sweep.id]) + "?best=loss&mode=min")
    config = page.context["live"]
    assert config["data_url"].endswith("/data/?best=loss&mode=min")
    assert client.get(config["data_url"], HTTP_IF_NONE_MATCH=f'"{config["version"]}"').status_code == 304
    other = client.get(_url(world, "?best=loss&mode=max"), HTTP_IF_NONE_MATCH=f'"{config["version"]}"')
    assert other.status_code == 200 and other.json()["mode"] == "max"  # another objective is another version


def test_the_feed_refuses_a_bad_query_and_writes(world):
    client = world.client("owner")
    assert client.get(_url(world, "?mode=sideways")).status_code == 400
    assert client.post(_url(world)).status_code == 405


def test_a_new_trial_and_its_objective_show_in_the_feed(world):
    client = world.client("viewer")
    before = client.get(_url(world)).json()
    run = world.sweep_runs[1]
    metrics_log(run_id=run.id, points=[MetricPoint("loss", 5, 0.01, 1.7e9)])  # a new best
    after = client.get(_url(world), HTTP_IF_NONE_MATCH=f'"{before["version"]}"').json()
    assert after["progress"][-1]["best"] == 0.01 and before["progress"][-1]["best"] == 0.5
    assert next(info for info in after["runs"] if info["id"] == run.id)["summary"]["loss"]["min"] == 0.01
