"""/api/sweeps and `kiln sweeps` / `kiln sweep [stop] SWEEP`: listing, reading, controlling, permissions."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from scheduler.sweeps.controller import sweeps_tick
from webapp.accounts.tokens import token_create
from webapp.client import cli
from webapp.experiments.models import Run, RunState, SweepState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit

from .factories import ProjectFactory, UserFactory

SPEC = {"recipe": {"model": "mlp"}, "sweep": {"method": "bayes", "max_runs": 4, "parallel": 2,
                                             "parameters": {"optimizer.lr": {"min": 0.001, "max": 0.1}}}}


def _headers(user):
    return {"Authorization": f"Bearer {token_create(user=user, name='tests')[1]}"}


@pytest.fixture
def swept(db):
    project = ProjectFactory()
    sweep = run_submit(user=project.owner_user, project=project, spec=SPEC).sweep
    sweeps_tick()
    first = Run.objects.filter(sweep=sweep).order_by("number").first()
    metrics_log(run_id=first.id, points=[MetricPoint("val_accuracy", 1, 0.25, 1.0), MetricPoint("val_accuracy", 2, 0.75, 2.0),
                                          MetricPoint("val_accuracy", 3, 0.5, 3.0)])
    return project, sweep, first


def test_list_and_read_show_state_trials_and_the_best_value_in_the_goals_direction(swept):
    project, sweep, first = swept
    client, headers = Client(), _headers(project.owner_user)
    listing = client.get("/api/sweeps", {"project": str(project.id)}, headers=headers)
    assert listing.status_code == 200
    [row] = listing.json()
    assert row["id"] == sweep.id and row["state"] == "running" and row["method"] == "bayes"
    assert row["trials"] == 2 and row["by_state"] == {"queued": 2}
    assert row["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    assert row["best_run"]["id"] == first.id and row["best_value"] == 0.75  # the max, not the last or the min
    assert client.get(f"/api/sweeps/{sweep.id}", headers=headers).json() == row


def test_stop_cancels_queued_trials_and_viewers_and_outsiders_are_refused(swept):
    project, sweep, _ = swept
    client = Client()
    outsider = client.post(f"/api/sweeps/{sweep.id}/control", json.dumps({"action": "stop"}),
                           content_type="application/json", headers=_headers(UserFactory()))
    assert outsider.status_code == 404
    assert client.get(f"/api/sweeps/{sweep.id}", headers=_headers(UserFactory())).status_code == 404
    bad = client.post(f"/api/sweeps/{sweep.id}/control", json.dumps({"action": "max_runs", "max_runs": 1}),
                      content_type="application/json", headers=_headers(project.owner_user))
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "max_runs"
    stopped = client.post(f"/api/sweeps/{sweep.id}/control", json.dumps({"action": "stop"}),
                          content_type="application/json", headers=_headers(project.owner_user))
    assert stopped.status_code == 200 and stopped.json()["state"] == SweepState.STOPPED
    assert set(Run.objects.filter(sweep=sweep).values_list("state", flat=True)) == {RunState.CANCELLED}


@pytest.mark.django_db(transaction=True)
def test_the_cli_lists_shows_and_stops_a_sweep(live_server, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    project = ProjectFactory()
    sweep = run_submit(user=project.owner_user, project=project, spec=SPEC).sweep
    sweeps_tick()
    monkeypatch.setenv("KILN_URL", live_server.url)
    monkeypatch.setenv("KILN_TOKEN", token_create(user=project.owner_user, name="cli")[1])
    assert cli.main(["sweeps", "--project", str(project.id)]) == 0
    out = capsys.readouterr().out
    assert "bayes sweep" in out and "running" in out and out.splitlines()[0].split()[:4] == ["ID", "NAME", "METHOD", "STATE"]
    assert cli.main(["sweep", str(sweep.id)]) == 0
    out = capsys.readouterr().out
    assert "Objective: maximize val_accuracy" in out and "Trials: 2 of 4 (2 queued)" in out
    assert cli.main(["sweep", "stop", str(sweep.id)]) == 0
    assert f"Sweep {sweep.id} bayes sweep: bayes, stopped" in capsys.readouterr().out
    assert cli.main(["sweep", "explode", str(sweep.id)]) == 2


@pytest.mark.django_db(transaction=True)
def test_the_api_the_query_language_and_the_cli_show_a_paused_trial(live_server, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    project = ProjectFactory()
    sweep = run_submit(user=project.owner_user, project=project, spec=SPEC).sweep
    sweeps_tick()
    paused = Run.objects.filter(sweep=sweep).order_by("number").first()
    Run.objects.filter(id=paused.id).update(state=RunState.PAUSED)
    headers = _headers(project.owner_user)
    assert Client().get(f"/api/runs/{paused.id}", headers=headers).json()["state"] == "paused"
    found = Client().get("/api/runs", {"project": str(project.id), "query": "state = paused"}, headers=headers).json()
    assert [run["id"] for run in found["items"]] == [paused.id]
    monkeypatch.setenv("KILN_URL", live_server.url)
    monkeypatch.setenv("KILN_TOKEN", token_create(user=project.owner_user, name="cli")[1])
    assert cli.main(["runs", "--project", str(project.id), "--query", "state = paused"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 1 and " paused " in rows[0]
    assert cli.main(["sweep", str(sweep.id)]) == 0
    assert "(1 paused, 1 queued)" in capsys.readouterr().out
