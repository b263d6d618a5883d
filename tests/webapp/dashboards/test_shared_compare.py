"""A project's public link compares runs and lists dashboards, read-only, and stays under the link.

Every address under share/<token>/ answers GET only (a POST is refused with 405 whatever it is), a
wrong or revoked token finds nothing (404), and the compare data and CSV are the signed-in ones.
"""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from webapp.dashboards.models import Dashboard
from webapp.dashboards.state import CompareState
from webapp.experiments.results import artifact_store
from webapp.projects.models import Visibility
from webapp.projects.services import project_set_visibility

from ..factories import ProjectFactory
from .conftest import public

pytestmark = pytest.mark.django_db
LINK = re.compile(r'(?:href|action)="([^"]*)"')


def share_routes() -> list[str]:
    """Every route the site serves under share/<token>/, read from the URL configuration itself."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns, "")
    return [route for route in found if route.startswith("share/")]


@pytest.fixture
def shared(world):
    token = public(world)
    dashboard = Dashboard.objects.create(
        project=world.project, owner=world.users["owner"], name="lr study",
        state=CompareState(runs=tuple(run.id for run in world.runs), keys=("loss",)).as_json(),
    )
    artifact = artifact_store(run_id=world.runs[0].id, name="notes.txt", kind="artifact", file=ContentFile(b"n", name="n"))
    ids = {"run_id": world.runs[0].id, "dashboard_id": dashboard.id, "artifact_id": artifact.id}
    return token, dashboard, ids


def filled(route: str, token: str, ids: dict[str, int]) -> str:
    path = route.replace("<str:token>", token)
    return "/" + re.sub(r"<id:(\w+)>", lambda match: str(ids[match.group(1)]), path)


def test_the_link_reaches_compare_and_the_dashboards_list():
    routes = share_routes()
    assert "share/<str:token>/compare/" in routes and "share/<str:token>/dashboards/" in routes
    assert len(routes) >= 12


def test_every_post_under_the_link_is_refused_and_changes_nothing(world, shared):
    token, dashboard, ids = shared
    for actor in ("anonymous", "owner"):
        client = world.client(actor)
        for route in share_routes():
            url = filled(route, token, ids)
            response = client.post(url, {"name": "by post", "state": f"runs={world.run_ids}"})
            assert response.status_code == 405, (actor, url, response.status_code)
    assert list(Dashboard.objects.values_list("name", flat=True)) == [dashboard.name]


def test_a_wrong_or_revoked_token_finds_nothing_anywhere_under_the_link(world, shared):
    token, _, ids = shared
    anonymous = Client()
    for route in share_routes():
        assert anonymous.get(filled(route, "not-the-token", ids)).status_code == 404, route
    project_set_visibility(user=world.users["owner"], project=world.project, visibility=Visibility.TEAM)
    for route in share_routes():
        assert anonymous.get(filled(route, token, ids)).status_code == 404, route


def test_the_shared_compare_data_and_csv_are_the_signed_in_ones(world, shared):
    token, _, _ = shared
    query = f"?runs={world.run_ids}"
    owner, anonymous = world.client("owner"), Client()
    mine = owner.get(reverse("dashboards:compare_data", args=[world.project.id]) + query).json()
    theirs = anonymous.get(reverse("dashboards:shared_compare_data", args=[token]) + query).json()
    assert theirs == mine and len(theirs["series"]) == 6  # loss and epoch of 3 runs, downsampled alike
    csv = anonymous.get(reverse("dashboards:shared_compare_csv", args=[token]) + query)
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    signed_in = owner.get(reverse("dashboards:compare_csv", args=[world.project.id]) + query)
    assert b"".join(csv.streaming_content) == b"".join(signed_in.streaming_content)


def test_a_run_of_another_project_is_not_compared_through_the_link(world, shared):
    token, _, _ = shared
    elsewhere = ProjectFactory(owner_user=world.users["owner"])
    from webapp.experiments.submit import run_submit

    foreign = run_submit(user=world.users["owner"], project=elsewhere, spec={"recipe": {"model": "mlp"}}).runs[0]
    url = reverse("dashboards:shared_compare_data", args=[token]) + f"?runs={world.runs[0].id},{foreign.id}"
    response = Client().get(url)
    assert response.status_code == 400 and str(foreign.id) in response.json()["error"]["message"]


def main_links(page: str) -> list[str]:
    return LINK.findall(page.split("<main>")[1].split("</main>")[0])


@pytest.mark.parametrize("actor", ["anonymous", "owner"])
def test_shared_pages_offer_nothing_writable_and_link_only_under_the_link(world, shared, actor):
    token, dashboard, _ = shared
    client = world.client(actor)
    pages = {
        "project": client.get(reverse("project_shared", args=[token])).content.decode(),
        "compare": client.get(reverse("dashboards:shared_compare", args=[token]) + f"?runs={world.run_ids}").content.decode(),
        "list": client.get(reverse("dashboards:shared_list", args=[token])).content.decode(),
        "dashboard": client.get(reverse("dashboards:shared", args=[token, dashboard.id])).content.decode(),
        "bad": client.get(reverse("dashboards:shared_compare", args=[token]) + "?runs=nonsense").content.decode(),
        "run": client.get(reverse("shared_run_detail", args=[token, world.runs[0].id])).content.decode(),
    }
    for name, page in pages.items():
        main = page.split("<main>")[1]
        assert 'method="post"' not in main and "csrfmiddlewaretoken" not in main, name
        assert "Save dashboard" not in main and "Delete" not in main and "New run" not in main, name
        links = main_links(page)
        assert links, name
        outside = [link for link in links if not link.startswith((f"/share/{token}/", "?", "/static/", "/assets/"))]
        assert outside == [], (name, outside)
    assert f'action="/share/{token}/compare/"' in pages["project"]
    assert f'href="/share/{token}/dashboards/"' in pages["project"]
    assert f'href="/share/{token}/dashboards/{dashboard.id}/"' in pages["list"]
    assert '"data": "/share/' + token + '/compare/data/"' in pages["compare"]
