"""The sweep pages: the Sweeps tab, a sweep opening on its objective, importance, rungs and controls."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from scheduler.sweeps.controller import sweeps_tick
from webapp.accounts.models import Role
from webapp.experiments.models import Run, RunState, SweepState
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Visibility
from webapp.projects.services import project_set_visibility

from .factories import MembershipFactory, ProjectFactory, TeamFactory

pytestmark = pytest.mark.django_db
SPEC = {"recipe": {"model": "mlp"}, "sweep": {
    "method": "bayes", "max_runs": 8, "parallel": 5, "early_terminate": {"type": "asha"},
    "parameters": {"optimizer.lr": {"min": 0.001, "max": 0.1}, "layers": {"values": [1, 2, 3]}}}}


@pytest.fixture
def sweep_world(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    project = ProjectFactory()
    team = TeamFactory()
    viewer = MembershipFactory(team=team, role=Role.VIEWER).user
    MembershipFactory(team=team, user=project.owner_user, role=Role.VIEWER)
    project_set_visibility(user=project.owner_user, project=project, visibility=Visibility.TEAM, team=team)
    sweep = run_submit(user=project.owner_user, project=project, spec=SPEC).sweep
    sweeps_tick()
    trials = list(Run.objects.filter(sweep=sweep).order_by("number"))
    # a rising accuracy: the best is the highest value, and the run whose curve ends highest wins
    curves = [[0.2, 0.5, 0.6], [0.3, 0.9, 0.8], [0.1, 0.2, 0.3], [0.4, 0.5, 0.7], [0.2, 0.4, 0.45]]
    for i, (trial, curve) in enumerate(zip(trials, curves, strict=True)):
        metrics_log(run_id=trial.id, points=[MetricPoint("val_accuracy", s, v, 1.0 + s) for s, v in enumerate(curve)])
        Run.objects.filter(id=trial.id).update(state=RunState.SUCCEEDED, finished_at=timezone.now() - timedelta(minutes=10 - i))
    sweep.trial_attrs = {str(trials[0].id): {"completed_rung_0": 0.2}, str(trials[1].id): {"completed_rung_0": 0.3}}
    sweep.save()
    return project, sweep, trials, viewer


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_sweep_page_opens_on_its_objective_with_best_as_the_maximum(sweep_world):
    project, sweep, trials, viewer = sweep_world
    page = _client(viewer).get(f"/p/{project.id}/sweeps/{sweep.id}/").content.decode()
    config = json.loads(page.split('id="sweep-config" type="application/json">')[1].split("</script>")[0])
    progress = json.loads(page.split('id="sweep-progress" type="application/json">')[1].split("</script>")[0])
    assert config["best"] == "val_accuracy" and config["mode"] == "max"
    assert [p["best"] for p in progress] == [0.6, 0.9, 0.9, 0.9, 0.9]
    assert f"#{trials[1].number}" in page.split('id="sweep-best"')[1].split("</p>")[0]
    assert set(config["importance"]) == {"optimizer.lr", "layers"}
    assert 'id="rungs"' in page and "<td>0</td><td>1</td><td>5</td>" in page  # all five trained past epoch 1
    assert 'id="sweep-controls"' not in page  # a viewer gets no controls


def test_an_editor_pauses_and_stops_from_the_page_and_a_viewer_cannot(sweep_world):
    project, sweep, _, viewer = sweep_world
    owner = _client(project.owner_user)
    page = owner.get(f"/p/{project.id}/sweeps/{sweep.id}/").content.decode()
    assert 'value="pause"' in page and 'value="stop"' in page
    url = f"/p/{project.id}/sweeps/{sweep.id}/control/"
    assert _client(viewer).post(url, {"action": "stop"}).status_code == 403
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(project.owner_user)
    assert forged.post(url, {"action": "stop"}).status_code == 403  # no CSRF token
    assert owner.post(url, {"action": "pause"}).status_code == 302
    sweep.refresh_from_db()
    assert sweep.state == SweepState.PAUSED
    response = owner.post(url, {"action": "max_runs", "max_runs": "2"}, follow=True)
    assert "from 5 (the trials made)" in response.content.decode()
    owner.post(url, {"action": "stop"})
    sweep.refresh_from_db()
    assert sweep.state == SweepState.STOPPED


def test_the_sweeps_tab_lists_state_best_run_and_value_and_outsiders_get_404(sweep_world):
    project, _, trials, viewer = sweep_world
    project_page = _client(viewer).get(f"/p/{project.id}/").content.decode()
    assert f'href="/p/{project.id}/sweeps/"' in project_page
    page = _client(viewer).get(f"/p/{project.id}/sweeps/").content.decode()
    row = page.split('id="sweep-table"')[1]
    assert "bayes sweep" in row and "running" in row and f"#{trials[1].number}" in row and "0.9" in row
    assert "maximize val_accuracy" in row
    from .factories import UserFactory

    assert _client(UserFactory()).get(f"/p/{project.id}/sweeps/").status_code == 404


FORM = {
    "mode": "recipe", "name": "", "recipe.model": "mlp", "recipe.dataset": "digits", "recipe.optimizer.name": "adam",
    "recipe.optimizer.lr": "0.01", "recipe.optimizer.momentum": "0", "recipe.optimizer.weight_decay": "0",
    "recipe.scheduler.name": "none", "recipe.scheduler.step_size": "1", "recipe.scheduler.gamma": "0.1",
    "recipe.epochs": "9", "recipe.batch_size": "32", "recipe.hidden_size": "64", "recipe.layers": "2",
    "recipe.dropout": "0", "recipe.seed": "0", "params": "", "resources.gpus": "0", "resources.max_minutes": "30",
    "priority": "0", "tags": "", "notes": "",
}


def test_a_bayes_asha_sweep_submitted_from_the_form_opens_its_sweep_page(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    project = ProjectFactory()
    client = _client(project.owner_user)
    sweep_yaml = ("method: bayes\nmax_runs: 12\nparallel: 3\nearly_terminate: {type: asha, eta: 3}\n"
                  "parameters:\n  optimizer.lr: {min: 0.0001, max: 0.1, distribution: log_uniform}\n")
    response = client.post(f"/p/{project.id}/submit/", {**FORM, "sweep": sweep_yaml})
    sweep = project.sweeps.get()
    assert response.status_code == 302 and response["Location"] == f"/p/{project.id}/sweeps/{sweep.id}/"
    assert sweep.controlled and sweep.spec["metric"] == {"name": "val_accuracy", "goal": "maximize"}
    bad = client.post(f"/p/{project.id}/submit/", {**FORM, "sweep": sweep_yaml.replace("eta: 3", "eta: 1")})
    assert bad.status_code == 400 and "sweep.early_terminate.eta" in bad.content.decode()
    assert project.sweeps.count() == 1


def test_a_promotion_sweeps_page_shows_its_paused_trials_and_promotions_per_rung():
    project = ProjectFactory()
    spec = {"recipe": {"model": "mlp", "epochs": 9}, "sweep": {
        "method": "random", "max_runs": 4, "parallel": 2, "parameters": {"optimizer.lr": {"min": 0.001, "max": 0.1}},
        "early_terminate": {"type": "asha", "variant": "promotion", "max_iter": 9}}}
    sweep = run_submit(user=project.owner_user, project=project, spec=spec).sweep
    sweeps_tick()
    paused, promoted = Run.objects.filter(sweep=sweep).order_by("number")
    Run.objects.filter(id=paused.id).update(state=RunState.PAUSED)
    Run.objects.filter(id=promoted.id).update(state=RunState.STOPPED_EARLY)
    sweep.trial_attrs = {str(paused.id): {"completed_rung_0": 0.2},
                         str(promoted.id): {"completed_rung_0": 0.3, "completed_rung_1": 0.5, "asha_rung": 2}}
    sweep.save()
    page = _client(project.owner_user).get(f"/p/{project.id}/sweeps/{sweep.id}/").content.decode()
    assert "asha with promotion" in page
    assert "<th>Promoted</th>" in page and "<td>0</td><td>1</td><td>2</td><td>1</td>" in page  # rung 0: 2 reached, 1 promoted
    assert '<span class="pill state-paused">1 paused</span>' in page
    assert '<span class="pill state-stopped_early">1 stopped early</span>' in page  # words, not "stoppedearly"
    assert '<span class="pill state-paused">Paused</span>' in page  # the trial table


def test_the_trials_table_shows_each_point_as_the_trials_name_does(sweep_world):
    project, sweep, trials, viewer = sweep_world
    Run.objects.filter(id=trials[0].id).update(params={**trials[0].params, "optimizer.lr": 0.004430375245218269})
    page = _client(viewer).get(f"/p/{project.id}/sweeps/{sweep.id}/").content.decode()
    assert '<span title="0.004430375245218269">0.00443038</span>' in page
