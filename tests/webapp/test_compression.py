"""JSON answers are gzip-compressed when the client accepts it; pages and clients that do not ask are left alone."""

from __future__ import annotations

import gzip
import json

import pytest
from django.test import Client

from webapp.accounts.tokens import token_create
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit

from .factories import ProjectFactory, UserFactory


@pytest.fixture
def owner_run(db):
    owner = UserFactory(username="gus")
    project = ProjectFactory(owner_user=owner, slug="zip", name="Zip")
    run = run_submit(user=owner, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]
    metrics_log(run_id=run.id, points=[MetricPoint("loss", step, 1.0 / (step + 1), 1.7e9 + step) for step in range(500)])
    return owner, project, run


def test_api_json_is_gzipped_when_accepted(owner_run):
    owner, _, _ = owner_run
    token = token_create(user=owner, name="zip")[1]
    client = Client(headers={"Authorization": f"Bearer {token}"})
    plain = client.get("/api/runs")
    zipped = client.get("/api/runs", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert plain.status_code == zipped.status_code == 200
    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped["Vary"]
    assert int(zipped["Content-Length"]) == len(zipped.content) < len(plain.content)
    assert json.loads(gzip.decompress(zipped.content)) == plain.json()


def test_the_compare_data_endpoint_is_gzipped_and_pages_are_not(owner_run):
    owner, project, run = owner_run
    client = Client()
    client.force_login(owner)
    data = client.get(f"/p/{project.id}/compare/data/?runs={run.id}&key=loss", headers={"Accept-Encoding": "gzip"})
    assert data.status_code == 200 and data["Content-Encoding"] == "gzip"
    series = json.loads(gzip.decompress(data.content))["series"]
    assert [len(s["dstep"]) for s in series] == [500]
    page = client.get(f"/p/{project.id}/compare/?runs={run.id}", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and "Content-Encoding" not in page  # HTML carries the CSRF token: no BREACH oracle


def test_gzipped_answers_carry_breach_padding_of_random_length():
    from webapp.compression import compressed

    data = json.dumps({"items": [{"n": i, "name": f"run-{i}"} for i in range(200)]}).encode()
    bodies = [compressed(data, 100) for _ in range(40)]
    assert all(gzip.decompress(body) == data for body in bodies)
    assert all(body[3] & gzip.FNAME for body in bodies)
    assert len({len(body) for body in bodies}) > 5  # the name's length varies from answer to answer
    assert max(len(body) for body in bodies) - min(len(body) for body in bodies) < 100
