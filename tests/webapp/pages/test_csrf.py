"""Every form that changes something refuses a POST without the CSRF token, and changes nothing."""

import pytest
from django.test import Client

from webapp.accounts.models import ApiToken, Membership, Team, TeamInvitation
from webapp.experiments.models import Run
from webapp.projects.models import Project

pytestmark = pytest.mark.django_db


def _urls(world):
    run, project = world.run, world.project
    team = Membership.objects.filter(user=world.users["admin"]).get().team
    return [
        ("/accounts/signup/", {"username": "x", "password1": "a-long-pass-42", "password2": "a-long-pass-42"}),
        ("/accounts/password/", {"old_password": "pw-for-tests-123", "new_password1": "n-e-w-pass-42", "new_password2": "n-e-w-pass-42"}),
        ("/teams/", {"name": "New team"}),
        (f"/teams/{team.slug}/invite/", {"username": "oscar", "role": "viewer"}),
        (f"/teams/{team.slug}/members/{world.users['viewer'].id}/role/", {"role": "editor"}),
        (f"/teams/{team.slug}/members/{world.users['viewer'].id}/remove/", {}),
        (f"/teams/{team.slug}/invitations/{world.users['outsider'].id}/revoke/", {}),
        (f"/invitations/{team.slug}/accept/", {}),
        (f"/invitations/{team.slug}/decline/", {}),
        ("/tokens/", {"name": "ci"}),
        ("/projects/new/", {"name": "Another"}),
        (f"/p/{project.id}/submit/", {"mode": "recipe", "recipe.model": "mlp"}),
        (f"/p/{project.id}/settings/", {"visibility": "public"}),
        (f"/p/{project.id}/settings/rotate/", {}),
        (f"/p/{project.id}/settings/revoke/", {}),
        (f"/p/{project.id}/settings/delete/", {"confirm": project.slug}),
        (f"/runs/{run.id}/cancel/", {}),
        (f"/runs/{run.id}/rerun/", {}),
        (f"/runs/{run.id}/notes/", {"notes": "x"}),
    ]


def _snapshot():
    return (Run.objects.count(), Team.objects.count(), Membership.objects.count(), ApiToken.objects.count(),
            list(Project.objects.values_list("id", "visibility", "public_token")),
            list(Run.objects.values_list("state", "notes")), list(Membership.objects.values_list("role", flat=True)),
            list(TeamInvitation.objects.values_list("team_id", "invitee_id")))


def _invite(world, invitee):
    team = Membership.objects.filter(user=world.users["admin"]).get().team
    TeamInvitation.objects.create(team=team, invitee=invitee, invited_by=world.users["admin"])


def test_posts_without_the_csrf_token_are_refused(world):
    world.users["admin"].set_password("pw-for-tests-123")
    _invite(world, world.users["outsider"])
    before = _snapshot()
    for actor in ("owner", "admin"):
        strict = world.client(actor, enforce_csrf_checks=True)
        for url, data in _urls(world):
            response = strict.post(url, data)
            assert response.status_code == 403, url
    assert _snapshot() == before


def test_pages_carry_the_csrf_token_in_their_forms(world):
    _invite(world, world.users["outsider"])
    client = world.client("owner", enforce_csrf_checks=True)
    pages = (f"/p/{world.project.id}/runs/{world.run.number}/", f"/p/{world.project.id}/submit/", f"/p/{world.project.id}/settings/", "/tokens/", "/teams/")
    for url in pages:
        assert b'name="csrfmiddlewaretoken"' in client.get(url).content, url
    # with the token the same strict client gets through
    page = client.get(f"/runs/{world.run.id}/", follow=True)
    token = page.cookies["csrftoken"].value if "csrftoken" in page.cookies else client.cookies["csrftoken"].value
    response = client.post(f"/runs/{world.run.id}/notes/", {"notes": "with token", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Client().get("/").status_code == 200
    invitee = world.client("outsider", enforce_csrf_checks=True)
    assert b'name="csrfmiddlewaretoken"' in invitee.get("/invitations/").content
