"""A team's first hour in a real browser: sign up, build a team, create a project, submit runs
from the form, watch a run live, share with a teammate, and keep outsiders out."""

import time

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from webapp.accounts.models import Membership, Role
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, logs_append, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.usefixtures("artifacts_in_tmp")]

PASSWORD = "a-long-browser-pass-42"
SCRIPT = """import engine.track as track

lr = track.config.get("lr", 0.01)
for step in range(100):  # a comment
    track.log({"loss": 1.0 / (step + 1)}, step=step)
"""


def _user(username):
    return get_user_model().objects.create_user(username=username, password=PASSWORD)


def test_sign_up_build_a_team_submit_runs_and_share_them(live_server, page, new_page, login, screenshot):
    _user("bob")
    _user("eve")

    # sign up from the login page
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Create an account").click()
    page.fill("#id_username", "alice")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_selector("text=Welcome, alice")

    # a team, with bob invited as an editor: he joins when he accepts
    page.get_by_role("link", name="Teams", exact=True).click()
    page.fill("#id_name", "Vision Lab")
    page.get_by_role("button", name="Create team").click()
    page.wait_for_selector("h1:has-text('Vision Lab')")
    page.fill("#id_username", "bob")
    page.select_option("#id_role", "editor")
    page.get_by_role("button", name="Invite").click()
    page.wait_for_selector("text=Invited bob as editor")
    assert not Membership.objects.filter(user__username="bob").exists()
    screenshot(page, "team")
    invitee = new_page()
    login(invitee, "bob", PASSWORD)
    invitee.get_by_role("link", name="accept or decline").click()
    invitee.locator("tr[data-invitation=vision-lab]").get_by_role("button", name="Accept").click()
    invitee.wait_for_selector("text=You joined Vision Lab as editor")
    assert Membership.objects.get(user__username="bob").role == Role.EDITOR

    # a personal project
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_role("link", name="New project").click()
    page.fill("#id_name", "Digits")
    page.fill("#id_description", "Small image classifiers")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_selector("text=No runs yet")
    project = Project.objects.get(slug="digits")

    # a recipe run from the config editor
    page.get_by_role("link", name="New run").click()
    expect(page.locator("#recipe-section")).to_be_visible()
    expect(page.locator("#code-section")).to_be_hidden()
    page.select_option("#f-recipe-model", "cnn")
    page.fill("#f-recipe-optimizer-lr", "0.05")
    page.fill("#f-recipe-epochs", "3")
    page.fill("#f-tags", "baseline, cnn")
    screenshot(page, "submit")
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_selector("#run-state")
    recipe_run = Run.objects.get(project=project, number=1)
    assert recipe_run.spec["recipe"]["model"] == "cnn" and recipe_run.spec["recipe"]["optimizer"]["lr"] == 0.05

    # a bad value stays on the form with its error, and nothing is created
    page.goto(f"{live_server.url}/p/{project.id}/submit/")
    page.fill("#f-recipe-epochs", "0")
    page.get_by_role("button", name="Submit run").click()
    error = page.locator(".has-error:has(#f-recipe-epochs) .field-error")
    assert "must be >= 1" in error.inner_text()
    assert Run.objects.filter(project=project).count() == 1

    # a code run typed into the editor, highlighted as it is typed
    page.goto(f"{live_server.url}/p/{project.id}/submit/")
    page.check("input[name=mode][value=code]")
    expect(page.locator("#code-section")).to_be_visible()
    expect(page.locator("#recipe-section")).to_be_hidden()
    page.fill("#f-code_filename", "train.py")
    page.fill("#f-code", SCRIPT)
    assert page.locator(".editor-view .tok-kw", has_text="import").count() >= 1
    assert page.locator(".editor-view .tok-comment").inner_text() == "# a comment"
    page.fill("#f-params", "lr: 0.02")
    screenshot(page, "submit_code")
    page.get_by_role("button", name="Submit run").click()
    page.wait_for_selector("text=code · train.py")
    code_run = Run.objects.get(project=project, number=2)
    assert code_run.kind == "code" and code_run.params == {"lr": 0.02}
    page.wait_for_selector("pre[data-highlight=python] .tok-kw")
    assert page.locator("pre[data-highlight=python] .tok-kw").count() >= 3

    # the project page lists both runs; filters narrow them
    page.goto(f"{live_server.url}/p/{project.id}/")
    assert page.locator("#run-table tbody tr").count() == 2
    page.fill("#f-tag", "cnn")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**tag=cnn**")
    assert page.locator("#run-table tbody tr").count() == 1

    # share with the team; bob sees it, eve (an outsider) gets 404
    page.goto(f"{live_server.url}/p/{project.id}/settings/")
    page.check("input[name=visibility][value=team]")
    page.select_option("#id_team", label="Vision Lab (vision-lab)")
    page.get_by_role("button", name="Save sharing").click()
    page.wait_for_selector("text=Digits is now shared with the team Vision Lab.")

    teammate = new_page()
    login(teammate, "bob", PASSWORD)
    teammate.get_by_role("link", name="Digits").click()
    teammate.wait_for_selector("#run-table")
    assert teammate.locator("#run-table tbody tr").count() == 2
    assert teammate.get_by_role("link", name="New run").is_visible()

    outsider = new_page()
    login(outsider, "eve", PASSWORD)
    assert outsider.locator("text=Digits").count() == 0
    response = outsider.goto(f"{live_server.url}/p/{project.id}/")
    assert response.status == 404 and outsider.locator("h1", has_text="Not found").is_visible()
    response = outsider.goto(f"{live_server.url}/runs/{code_run.id}/")
    assert response.status == 404


def test_run_page_follows_a_run_live_without_reloading(live_server, page, login, screenshot):
    owner = _user("alice")
    project = Project.objects.create(slug="digits", name="Digits", owner_user=owner)
    run = run_submit(user=owner, project=project, spec={"name": "cnn-baseline", "recipe": {"model": "cnn"}, "tags": ["baseline"]}).runs[0]
    login(page, "alice", PASSWORD)
    page.goto(f"{live_server.url}/runs/{run.id}/")
    page.wait_for_selector("#run-state[data-state=queued]")
    page.evaluate("window.__sameDocument = true")

    run_transition(run_id=run.id, from_states=("queued",), to_state="scheduled", reason="placed", new_attempt=True)
    run_transition(run_id=run.id, from_states=("scheduled",), to_state="running", reason="started",
                   progress={"epoch": 1, "epochs": 5, "eta_seconds": 125})
    metrics_log(run_id=run.id, points=[MetricPoint("loss", s, 2.0 / (s + 1), time.time()) for s in range(10)])
    logs_append(run_id=run.id, lines=[(s, "stdout", f"epoch {s}: loss {2.0 / (s + 1):.3f}") for s in range(3)])
    page.wait_for_selector("#run-state[data-state=running]", timeout=10_000)
    page.wait_for_selector(".chart[data-metric-key=loss][data-points='10']", timeout=10_000)
    page.wait_for_selector(".log-line[data-seq='2']", timeout=10_000)
    assert page.locator("#run-progress").inner_text() == "epoch 1 of 5 · about 2m 05s left"

    more = [MetricPoint("loss", s, 2.0 / (s + 1), time.time()) for s in range(10, 25)]
    more += [MetricPoint("accuracy", s, s / 25, time.time()) for s in range(25)]
    metrics_log(run_id=run.id, points=more)
    logs_append(run_id=run.id, lines=[(3, "stderr", "warning: <b>not bold</b>")])
    page.wait_for_selector(".chart[data-metric-key=loss][data-points='25']", timeout=10_000)
    page.wait_for_selector(".chart[data-metric-key=accuracy][data-points='25']", timeout=10_000)
    assert page.locator(".log-line.stderr").inner_text().strip() == "warning: <b>not bold</b>"
    assert page.locator(".chart .main-svg").count() >= 2  # Plotly drew both charts
    assert page.locator("#timeline li").count() == 3  # queued, scheduled, running: the timeline follows too
    screenshot(page, "run_live")  # the README's run.png: test_charts.py

    run_transition(run_id=run.id, from_states=("running",), to_state="succeeded", reason="done")
    page.wait_for_selector("#run-state[data-state=succeeded]", timeout=10_000)
    page.wait_for_selector("body[data-live-stopped=true]", timeout=10_000)
    timeline = page.locator("#timeline li .pill").all_inner_texts()
    assert timeline == ["Queued", "Scheduled", "Running", "Succeeded"]
    assert page.locator("#run-finished").inner_text().startswith("20")  # a date now, not a dash
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    expect(page.locator("#cancel-form")).to_be_hidden()


def test_tokens_page_shows_a_new_token_once(live_server, page, login, screenshot):
    _user("alice")
    login(page, "alice", PASSWORD)
    page.get_by_role("link", name="Tokens", exact=True).click()
    page.fill("#id_name", "laptop CLI")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text()
    assert secret.startswith("kiln_")
    page.fill("#id_name", "CI")
    page.get_by_role("button", name="Create token").click()
    page.get_by_role("link", name="Tokens", exact=True).click()
    assert page.locator("#new-token").count() == 0 and secret not in page.content()
    assert page.locator("table.tokens tbody tr").count() == 2
    screenshot(page, "tokens")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="laptop CLI").get_by_role("button", name="Revoke").click()
    page.wait_for_selector("text=Token revoked")
    assert page.locator("tr.revoked").count() == 1


def test_project_page_screenshot_with_metrics(live_server, page, login, screenshot):
    owner = _user("alice")
    project = Project.objects.create(slug="digits", name="Digits", owner_user=owner, description="Small image classifiers")
    spec = {"recipe": {"model": "cnn"}, "tags": ["lr-search"],
            "sweep": {"parameters": {"optimizer.lr": {"values": [0.1, 0.03, 0.01, 0.003, 0.001]}}}}
    runs = run_submit(user=owner, project=project, spec=spec).runs
    for index, run in enumerate(runs):
        loss = 0.2 + 0.15 * abs(index - 2)
        metrics_log(run_id=run.id, points=[MetricPoint("loss", 99, loss, 1.0), MetricPoint("accuracy", 99, 1 - loss / 2, 1.0)])
        run_transition(run_id=run.id, from_states=("queued",), to_state="scheduled", new_attempt=True)
        run_transition(run_id=run.id, from_states=("scheduled",), to_state="running")
        if index < 4:
            run_transition(run_id=run.id, from_states=("running",), to_state="succeeded" if index != 1 else "failed")
    login(page, "alice", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.id}/?sort=metric:loss")
    assert page.locator("#run-table tbody tr").first.get_attribute("data-run") == "3"
    page.locator("#select-all").check()
    assert page.locator(".run-select:checked").count() == 5
    compare = page.locator("#compare-form")
    assert compare.get_by_role("button", name="Compare selected").is_enabled()
    ids = sorted(int(i) for i in compare.locator("input[name=runs]").input_value().split(","))
    assert ids == sorted(run.id for run in runs)
    screenshot(page, "project_with_metrics")
