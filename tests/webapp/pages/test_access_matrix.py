"""Every page and JSON endpoint, asked by the owner, each team role, an outsider and an anonymous visitor.

Outsiders get 404 for anything private; viewers see but get 403 when they try to act;
anonymous visitors are sent to log in on pages and get 404 from JSON and downloads.
"""

import pytest

from webapp.experiments.models import Run

from .conftest import ACTORS

pytestmark = pytest.mark.django_db

OK, FORBIDDEN, MISSING, LOGIN = 200, 403, 404, 302
#                     owner viewer editor admin outsider anonymous
SEE = dict(zip(ACTORS, (OK, OK, OK, OK, MISSING, LOGIN), strict=True))
SEE_DATA = dict(zip(ACTORS, (OK, OK, OK, OK, MISSING, MISSING), strict=True))
EDIT_PAGE = dict(zip(ACTORS, (OK, FORBIDDEN, OK, OK, MISSING, LOGIN), strict=True))
ADMIN_PAGE = dict(zip(ACTORS, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN, MISSING, LOGIN), strict=True))
ACT = dict(zip(ACTORS, (302, FORBIDDEN, 302, 302, MISSING, MISSING), strict=True))
MOVED = dict(zip(ACTORS, (301, 301, 301, 301, MISSING, LOGIN), strict=True))  # the old run address: 404 to outsiders
ADMIN_ACT = dict(zip(ACTORS, (302, FORBIDDEN, FORBIDDEN, FORBIDDEN, MISSING, LOGIN), strict=True))

GET_PAGES = [
    ("project page", lambda w: f"/p/{w.project.id}/", SEE),
    ("submit form", lambda w: f"/p/{w.project.id}/submit/", EDIT_PAGE),
    ("clone form", lambda w: f"/p/{w.project.id}/submit/?clone={w.code_run.id}", EDIT_PAGE),
    ("settings", lambda w: f"/p/{w.project.id}/settings/", ADMIN_PAGE),
    ("run page", lambda w: f"/p/{w.project.id}/runs/{w.run.number}/", SEE),
    ("code run page", lambda w: f"/p/{w.project.id}/runs/{w.code_run.number}/", SEE),
    ("old run address", lambda w: f"/runs/{w.run.id}/", MOVED),
    ("metrics feed", lambda w: f"/runs/{w.run.id}/metrics.json", SEE_DATA),
    ("logs feed", lambda w: f"/runs/{w.run.id}/logs.json?after=0", SEE_DATA),
    ("code download", lambda w: f"/runs/{w.code_run.id}/code/", SEE_DATA),
    ("checkpoint download", lambda w: f"/runs/{w.run.id}/artifacts/{w.run.artifacts.get().id}/", SEE_DATA),
]

POSTS = [
    ("cancel", lambda w: f"/runs/{w.run.id}/cancel/", {}, ACT),
    ("re-run", lambda w: f"/runs/{w.run.id}/rerun/", {}, ACT),
    ("notes", lambda w: f"/runs/{w.run.id}/notes/", {"notes": "looks good"}, ACT),
    ("submit", lambda w: f"/p/{w.project.id}/submit/", {"mode": "recipe", "recipe.model": "cnn"}, {**ACT, "anonymous": LOGIN}),
    ("visibility", lambda w: f"/p/{w.project.id}/settings/", {"visibility": "public"}, ADMIN_ACT),
    ("delete", lambda w: f"/p/{w.project.id}/settings/delete/", {"confirm": "vision"}, ADMIN_ACT),
]


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(("page", "url", "expected"), GET_PAGES, ids=[p[0] for p in GET_PAGES])
def test_pages_answer_by_role(world, actor, page, url, expected):
    response = world.client(actor).get(url(world))
    response.close()  # downloads stream from storage
    assert response.status_code == expected[actor], f"{page} as {actor}"
    if expected[actor] == LOGIN:
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(("action", "url", "data", "expected"), POSTS, ids=[p[0] for p in POSTS])
def test_actions_answer_by_role_and_refusals_change_nothing(world, actor, action, url, data, expected):
    runs_before = Run.objects.count()
    response = world.client(actor).post(url(world), data)
    assert response.status_code == expected[actor], f"{action} as {actor}"
    if expected[actor] != 302:
        world.run.refresh_from_db()
        world.project.refresh_from_db()
        assert Run.objects.count() == runs_before
        assert world.run.state == "queued" and world.run.notes == ""
        assert world.project.visibility == "team"


def test_actions_refuse_get(world):
    client = world.client("owner")
    for url in (f"/runs/{world.run.id}/cancel/", f"/runs/{world.run.id}/rerun/", f"/p/{world.project.id}/settings/delete/"):
        assert client.get(url).status_code == 405


def test_viewer_sees_no_action_buttons_and_editor_does(world):
    viewer_page = world.client("viewer").get(f"/runs/{world.run.id}/", follow=True).content.decode()
    editor_page = world.client("editor").get(f"/runs/{world.run.id}/", follow=True).content.decode()
    for marker in ("Cancel run", "Re-run", "Clone &amp; edit", "Save notes"):
        assert marker not in viewer_page
        assert marker in editor_page
    assert "New run" not in world.client("viewer").get(f"/p/{world.project.id}/").content.decode()
    project_page = world.client("editor").get(f"/p/{world.project.id}/").content.decode()
    assert "New run" in project_page and "Settings" not in project_page
    assert "Settings" in world.client("owner").get(f"/p/{world.project.id}/").content.decode()


def test_unknown_ids_are_404_like_private_ones(world):
    client = world.client("owner")
    assert client.get("/p/999999/").status_code == 404
    assert client.get("/runs/999999/").status_code == 404
    assert client.get("/runs/999999/metrics.json").status_code == 404
    assert client.get(f"/runs/{world.run.id}/artifacts/999999/").status_code == 404
    assert client.get(f"/runs/{world.run.id}/code/").status_code == 404  # a recipe run has no code
