"""Page inputs found from outside that gave a 500 or were stored as they came: now a 4xx that changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

import webapp
from webapp.csp import CONTENT_SECURITY_POLICY, EVAL_POLICY
from webapp.dashboards.models import Dashboard
from webapp.experiments.models import Run
from webapp.experiments.submit import run_submit

HUGE = [str(2**63), str(2**70), "99999999999999999999999"]


@pytest.mark.parametrize("runs", [*HUGE, "²", "1,٣", "0", "-4"])
def test_compare_data_with_runs_that_are_not_ids_is_a_400_naming_runs(world, runs):
    client = world.client("owner", raise_request_exception=False)
    response = client.get(reverse("dashboards:compare_data", args=[world.project.id]), {"runs": runs})
    assert response.status_code == 400, response.content
    assert "runs" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", [
    "/p/{huge}/", "/p/{huge}/compare/data/", "/runs/{huge}/", "/runs/{huge}/metrics.json", "/runs/1/artifacts/{huge}/",
])
@pytest.mark.parametrize("huge", HUGE)
def test_an_id_past_the_bigint_in_a_page_path_is_a_404(world, path, huge):
    response = world.client("owner", raise_request_exception=False).get(path.format(huge=huge))
    assert response.status_code == 404


@pytest.mark.parametrize("query", ["clone=²", f"clone={2**70}"])
def test_a_clone_id_that_is_not_an_id_opens_an_empty_submit_form(world, query):
    response = world.client("owner").get(reverse("run_submit", args=[world.project.id]) + "?" + query)
    assert response.status_code == 200 and response.context["clone_of"] is None


@pytest.mark.parametrize("since", [f"loss:{2**70}", "loss:²"])
def test_live_endpoints_ignore_steps_that_are_not_numbers(world, since):
    client = world.client("owner", raise_request_exception=False)
    assert client.get(reverse("run_metrics_json", args=[world.run.id]), {"since": since}).status_code == 200
    assert client.get(reverse("run_logs_json", args=[world.run.id]), {"after": since.split(":")[1]}).status_code == 200


def test_rerunning_a_sweep_point_from_its_page_queues_the_points_params(world):
    spec = {"recipe": {"model": "mlp"}, "sweep": {"parameters": {"optimizer.lr": {"values": [0.3, 0.03]}}}}
    point = run_submit(user=world.users["owner"], project=world.project, spec=spec).runs[1]
    response = world.client("editor").post(reverse("run_rerun", args=[point.id]))
    again = Run.objects.get(cloned_from=point)
    assert response.status_code == 302 and response["Location"] == reverse("run_page", args=[again.project_id, again.number])
    assert again.params == point.params and again.params["optimizer.lr"] == 0.03 and again.sweep_id is None


def test_a_rerun_whose_stored_spec_no_longer_validates_says_why_and_queues_nothing(world):
    Run.objects.filter(id=world.run.id).update(spec={**world.run.spec, "gpu": 1})
    before = Run.objects.count()
    response = world.client("editor").post(reverse("run_rerun", args=[world.run.id]), follow=True)
    assert response.status_code == 200 and "Cannot re-run" in response.content.decode()
    assert Run.objects.count() == before


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_nul_in_run_notes_is_refused_and_not_stored(world, encoding):
    client = world.client("editor", raise_request_exception=False)
    url = reverse("run_notes", args=[world.run.id])
    if encoding == "urlencoded":
        response = client.post(url, "notes=a%00b", content_type="application/x-www-form-urlencoded")
    else:
        response = client.post(url, {"notes": "a\x00b"})
    assert response.status_code == 400 and "NUL" in response.content.decode()
    world.run.refresh_from_db()
    assert world.run.notes == ""


def test_nul_in_a_dashboard_name_is_refused_and_not_stored(world):
    url = reverse("dashboards:list", args=[world.project.id])
    response = world.client("editor", raise_request_exception=False).post(url, {"name": "d\x00", "state": f"runs={world.run.id}"})
    assert response.status_code == 400 and not Dashboard.objects.exists()


@pytest.mark.parametrize("field", ["q", "tag", "owner", "state", "sort"])
def test_nul_in_a_run_table_filter_is_a_400_not_a_database_error(world, field):
    response = world.client("owner", raise_request_exception=False).get(
        reverse("project_detail", args=[world.project.id]), {field: "a\x00b"}
    )
    assert response.status_code == 400 and f"The field {field} must not contain NUL" in response.content.decode()


def test_nul_in_a_sign_in_is_refused(db):
    response = Client(raise_request_exception=False).post(reverse("login"), {"username": "a\x00b", "password": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize("name", ["home", "login"])
def test_every_page_carries_a_csp_without_inline_script(world, name):
    response = world.client("owner").get(reverse(name))
    policy = response["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    scripts = next(part for part in policy.split("; ") if part.startswith("script-src"))
    assert scripts == "script-src 'self'"


def test_the_run_page_and_api_docs_carry_the_csp_and_only_chart_dashboards_allow_eval(world):
    client = world.client("owner")
    for url in (reverse("run_detail", args=[world.run.id]), reverse("run_submit", args=[world.project.id]), "/api/docs"):
        assert client.get(url)["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, url
    compare = client.get(reverse("dashboards:compare", args=[world.project.id]) + f"?runs={world.run.id}")
    assert compare["Content-Security-Policy"] == EVAL_POLICY and "'unsafe-inline'" not in EVAL_POLICY.split("; ")[1]


def test_no_template_holds_inline_script_or_event_handlers():
    """What the CSP would refuse: <script> without src (json_script data blocks aside) and on...= attributes."""
    offenders = []
    for template in Path(webapp.__file__).parent.rglob("templates/**/*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.IGNORECASE):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{template.name}: {tag}")
        offenders += [f"{template.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text, flags=re.IGNORECASE)]
        offenders += [f"{template.name}: javascript: URL" for _ in re.findall(r"javascript:", text, flags=re.IGNORECASE)]
    assert not offenders, offenders
