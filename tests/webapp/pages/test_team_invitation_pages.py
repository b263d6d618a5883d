"""Team invitations in the pages: the invitee is told, accepts or declines; admins withdraw; members leave."""

from __future__ import annotations

import pytest
from django.test import Client

from webapp.accounts.models import Membership, Role, TeamInvitation

from ..factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def lab():
    team = TeamFactory(slug="lab", name="Lab")
    admin = MembershipFactory(team=team, role=Role.ADMIN, user=UserFactory(username="ada")).user
    nina = UserFactory(username="nina")
    assert _client(admin).post("/teams/lab/invite/", {"username": "nina", "role": "editor"}).status_code == 302
    return team, admin, nina


def test_the_invitee_is_told_on_the_home_page_and_accepts(lab):
    team, _, nina = lab
    client = _client(nina)
    assert "You have 1 team invitation waiting" in client.get("/").content.decode()
    page = client.get("/invitations/").content.decode()
    assert 'data-invitation="lab"' in page and "Editor" in page and "ada" in page
    assert client.get("/teams/lab/").status_code == 404  # not a member yet
    response = client.post("/invitations/lab/accept/", follow=True)
    assert "You joined Lab as editor." in response.content.decode()
    assert Membership.objects.get(team=team, user=nina).role == Role.EDITOR
    assert "team invitation" not in client.get("/").content.decode()


def test_declining_creates_no_membership(lab):
    team, _, nina = lab
    response = _client(nina).post("/invitations/lab/decline/", follow=True)
    assert "Declined the invitation to Lab." in response.content.decode()
    assert not Membership.objects.filter(team=team, user=nina).exists() and not TeamInvitation.objects.exists()


def test_admins_see_pending_invitations_and_withdraw_them(lab):
    team, admin, nina = lab
    page = _client(admin).get("/teams/lab/").content.decode()
    assert 'data-invitee="nina"' in page and "Withdraw" in page
    assert _client(admin).post(f"/teams/lab/invitations/{nina.id}/revoke/").status_code == 302
    assert not TeamInvitation.objects.exists()
    assert _client(nina).post("/invitations/lab/accept/").status_code == 404
    assert not Membership.objects.filter(team=team, user=nina).exists()


def test_only_admins_withdraw_and_only_the_invitee_answers(lab):
    team, _, nina = lab
    viewer = MembershipFactory(team=team, role=Role.VIEWER).user
    assert _client(viewer).post(f"/teams/lab/invitations/{nina.id}/revoke/").status_code == 403
    assert 'data-invitee="nina"' not in _client(viewer).get("/teams/lab/").content.decode()
    assert _client(viewer).post("/invitations/lab/accept/").status_code == 404
    assert _client(UserFactory()).post("/invitations/lab/decline/").status_code == 404
    assert TeamInvitation.objects.filter(invitee=nina).exists()


def test_the_last_admin_is_told_why_they_cannot_leave(lab):
    team, admin, _ = lab
    response = _client(admin).post(f"/teams/lab/members/{admin.id}/remove/", follow=True)
    assert "You are the last admin of lab: make another member admin before you leave." in response.content.decode()
    assert Membership.objects.filter(team=team, user=admin, role=Role.ADMIN).exists()
