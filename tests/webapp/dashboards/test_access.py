"""Every dashboard page and data endpoint asks the one permission check.

Members see (200), outsiders and anonymous visitors get 404 (a private project does not exist for
them), viewers get 403 on writes, and a public link opens the shared dashboard read-only.
"""

import pytest
from django.test import Client
from django.urls import reverse

from webapp.dashboards.models import Dashboard
from webapp.dashboards.state import CompareState
from webapp.projects.models import Visibility
from webapp.projects.services import project_set_visibility

from .conftest import ACTORS, EDITS, SEES, public

pytestmark = pytest.mark.django_db


@pytest.fixture
def dashboard(world):
    return Dashboard.objects.create(
        project=world.project, owner=world.users["owner"], name="lr study",
        state=CompareState(runs=tuple(run.id for run in world.runs), keys=("loss",)).as_json(),
    )


def read_urls(world, dashboard) -> list[str]:
    pid, runs = world.project.id, f"runs={world.run_ids}"
    return [
        reverse("dashboards:compare", args=[pid]) + "?" + runs,
        reverse("dashboards:compare_data", args=[pid]) + "?" + runs + "&key=loss",
        reverse("dashboards:compare_csv", args=[pid]) + "?" + runs,
        reverse("dashboards:sweep", args=[pid, world.sweep.id]),
        reverse("dashboards:list", args=[pid]),
        reverse("dashboards:dashboard", args=[pid, dashboard.id]),
    ]


@pytest.mark.parametrize("actor", ACTORS)
def test_read_pages_and_endpoints_open_to_members_only(world, dashboard, actor):
    client = world.client(actor)
    for url in read_urls(world, dashboard):
        response = client.get(url)
        expected = 200 if actor in SEES else 404
        assert response.status_code == expected, (actor, url, response.status_code)


@pytest.mark.parametrize("actor", ACTORS)
def test_saving_a_dashboard_needs_edit_access(world, actor):
    url = reverse("dashboards:list", args=[world.project.id])
    response = world.client(actor).post(url, {"name": f"by {actor}", "state": f"runs={world.run_ids}&key=loss"})
    expected = 302 if actor in EDITS else 403 if actor == "viewer" else 404
    assert response.status_code == expected
    assert Dashboard.objects.filter(name=f"by {actor}").exists() == (actor in EDITS)


@pytest.mark.parametrize("actor", ACTORS)
def test_deleting_a_dashboard_needs_edit_access(world, dashboard, actor):
    url = reverse("dashboards:delete", args=[world.project.id, dashboard.id])
    response = world.client(actor).post(url)
    expected = 302 if actor in EDITS else 403 if actor == "viewer" else 404
    assert response.status_code == expected
    assert Dashboard.objects.filter(id=dashboard.id).exists() == (actor not in EDITS)


def test_reading_urls_refuse_writes_and_writes_refuse_reads(world, dashboard):
    client = world.client("owner")
    assert client.post(reverse("dashboards:compare_data", args=[world.project.id])).status_code == 405
    assert client.get(reverse("dashboards:delete", args=[world.project.id, dashboard.id])).status_code == 405


def test_forms_need_the_csrf_token(world, dashboard):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["owner"])
    assert client.post(reverse("dashboards:list", args=[world.project.id]), {"name": "x", "state": ""}).status_code == 403
    assert client.post(reverse("dashboards:delete", args=[world.project.id, dashboard.id])).status_code == 403
    assert Dashboard.objects.filter(id=dashboard.id).exists()


def shared_urls(token: str, dashboard) -> list[str]:
    return [
        reverse("dashboards:shared", args=[token, dashboard.id]),
        reverse("dashboards:shared_data", args=[token, dashboard.id]) + "?key=loss",
        reverse("dashboards:shared_csv", args=[token, dashboard.id]),
    ]


@pytest.mark.parametrize("actor", ACTORS)
def test_a_public_link_opens_the_dashboard_read_only_to_anyone(world, dashboard, actor):
    token = public(world)
    client = world.client(actor)
    for url in shared_urls(token, dashboard):
        assert client.get(url).status_code == 200, (actor, url)
    page = client.get(shared_urls(token, dashboard)[0]).content.decode()
    assert "Save dashboard" not in page and "csrfmiddlewaretoken" not in page.split("<main>")[1]


def test_a_link_holder_gets_nothing_outside_the_link(world, dashboard):
    public(world)
    for url in read_urls(world, dashboard):
        assert Client().get(url).status_code == 404


def test_a_wrong_revoked_or_foreign_token_finds_nothing(world, dashboard):
    token = public(world)
    anonymous = Client()
    for url in shared_urls("not-the-token", dashboard):
        assert anonymous.get(url).status_code == 404
    other = Dashboard.objects.create(project=dashboard.project, name="other", state=dashboard.state)
    project_set_visibility(user=world.users["owner"], project=world.project, visibility=Visibility.TEAM)
    for url in shared_urls(token, dashboard) + shared_urls(token, other):
        assert anonymous.get(url).status_code == 404


def test_a_dashboard_of_another_project_is_not_found_through_this_one(world, dashboard):
    from ..factories import ProjectFactory

    elsewhere = ProjectFactory(owner_user=world.users["owner"])
    url = reverse("dashboards:dashboard", args=[elsewhere.id, dashboard.id])
    assert world.client("owner").get(url).status_code == 404
