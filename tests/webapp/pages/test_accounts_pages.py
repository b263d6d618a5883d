"""Sign-up, password change, teams and API tokens through their pages."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from webapp.accounts.models import ApiToken, Membership, Role, Team
from webapp.accounts.tokens import token_authenticate, token_create

from ..factories import MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# ---- sign up and passwords ----

def test_visitor_signs_up_and_is_logged_in(client):
    assert b"Create an account" in client.get("/").content
    response = client.post("/accounts/signup/", {
        "username": "newbie", "email": "", "password1": "a-long-pass-phrase-42", "password2": "a-long-pass-phrase-42",
    })
    assert response.status_code == 302 and response["Location"] == "/"
    assert User.objects.filter(username="newbie").exists()
    assert b"Welcome, newbie" in client.get("/").content


def test_signup_with_bad_input_creates_nobody(client):
    UserFactory(username="taken")
    response = client.post("/accounts/signup/", {"username": "taken", "password1": "a-long-pass-42", "password2": "different-42"})
    assert response.status_code == 400
    content = response.content.decode()
    assert "A user with that username already exists." in content
    assert "password fields didn" in content  # Django's own message; its apostrophe is typographic
    assert User.objects.count() == 1


def test_signup_closed_says_so_and_creates_nobody(client, settings):
    settings.KILN_SIGNUP_OPEN = False
    response = client.get("/accounts/signup/")
    assert response.status_code == 403 and b"Sign-up is closed" in response.content
    response = client.post("/accounts/signup/", {"username": "x", "password1": "a-long-pass-42", "password2": "a-long-pass-42"})
    assert response.status_code == 403 and not User.objects.exists()
    assert b"Create an account" not in client.get("/").content


def test_password_change(settings):
    user = UserFactory()
    client = _client(user)
    assert client.get("/accounts/password/").status_code == 200
    response = client.post("/accounts/password/", {
        "old_password": "pw-for-tests-123", "new_password1": "fresh-pass-phrase-9", "new_password2": "fresh-pass-phrase-9",
    })
    assert response.status_code == 302 and response["Location"] == "/accounts/password/done/"
    user.refresh_from_db()
    assert user.check_password("fresh-pass-phrase-9")
    bad = client.post("/accounts/password/", {"old_password": "wrong", "new_password1": "x", "new_password2": "x"})
    assert bad.status_code == 200 and b"Your old password was entered incorrectly" in bad.content
    assert Client().get("/accounts/password/").status_code == 302


def test_nav_links_show_for_signed_in_users_and_admin_only_for_staff():
    page = _client(UserFactory()).get("/").content.decode()
    for link in ('href="/teams/"', 'href="/tokens/"', ">Projects<", "Log out"):
        assert link in page
    assert ">Admin<" not in page
    staff = UserFactory(is_staff=True)
    assert ">Admin<" in _client(staff).get("/").content.decode()


# ---- teams ----

def test_user_creates_a_team_and_becomes_its_admin():
    user = UserFactory()
    client = _client(user)
    response = client.post("/teams/", {"name": "Vision Lab"})
    assert response.status_code == 302 and response["Location"] == "/teams/vision-lab/"
    assert Membership.objects.get(team__slug="vision-lab").role == Role.ADMIN
    assert "Vision Lab" in client.get("/teams/").content.decode()


def test_duplicate_or_empty_team_names_create_nothing():
    client = _client(UserFactory())
    client.post("/teams/", {"name": "Vision Lab"})
    for name in ("Vision Lab", "!!!", ""):
        response = client.post("/teams/", {"name": name})
        assert response.status_code == 400
        assert b"field-error" in response.content
    assert Team.objects.count() == 1


@pytest.fixture
def team():
    team = TeamFactory(slug="lab", name="Lab")
    admin = MembershipFactory(team=team, role=Role.ADMIN, user=UserFactory(username="ada")).user
    viewer = MembershipFactory(team=team, role=Role.VIEWER, user=UserFactory(username="vic")).user
    return team, admin, viewer


def test_team_admin_invites_changes_roles_and_removes(team):
    team, admin, viewer = team
    newcomer = UserFactory(username="nina")
    client = _client(admin)
    page = client.get("/teams/lab/").content.decode()
    assert "Invite a member" in page and "vic" in page
    assert client.post("/teams/lab/invite/", {"username": "nina", "role": "editor"}).status_code == 302
    assert not Membership.objects.filter(team=team, user=newcomer).exists()  # invited, not yet a member
    assert _client(newcomer).post("/invitations/lab/accept/").status_code == 302
    assert Membership.objects.get(team=team, user=newcomer).role == Role.EDITOR
    assert client.post(f"/teams/lab/members/{newcomer.id}/role/", {"role": "admin"}).status_code == 302
    assert Membership.objects.get(team=team, user=newcomer).role == Role.ADMIN
    assert client.post(f"/teams/lab/members/{viewer.id}/remove/").status_code == 302
    assert not Membership.objects.filter(team=team, user=viewer).exists()


def test_bad_invites_show_the_error_and_change_nothing(team):
    team, admin, _ = team
    client = _client(admin)
    before = Membership.objects.count()
    for data, message in (
        ({"username": "ghost", "role": "viewer"}, "No user called"),
        ({"username": "vic", "role": "viewer"}, "already a member"),
        ({"username": "vic", "role": "owner"}, "Select a valid choice"),
    ):
        response = client.post("/teams/lab/invite/", data)
        assert response.status_code == 400
        assert message in response.content.decode()
    assert Membership.objects.count() == before


def test_the_last_admin_cannot_step_down_or_leave(team):
    team, admin, _ = team
    client = _client(admin)
    response = client.post(f"/teams/lab/members/{admin.id}/role/", {"role": "viewer"}, follow=True)
    assert "at least one admin" in response.content.decode()
    client.post(f"/teams/lab/members/{admin.id}/remove/")
    assert Membership.objects.get(team=team, user=admin).role == Role.ADMIN


def test_members_see_the_team_and_leave_but_do_not_manage_it(team):
    team, admin, viewer = team
    client = _client(viewer)
    page = client.get("/teams/lab/").content.decode()
    assert "ada" in page and "Invite a member" not in page and "Leave team" in page
    assert client.post("/teams/lab/invite/", {"username": "ada", "role": "viewer"}).status_code == 403
    assert client.post(f"/teams/lab/members/{admin.id}/role/", {"role": "viewer"}).status_code == 403
    assert client.post(f"/teams/lab/members/{admin.id}/remove/").status_code == 403
    assert Membership.objects.filter(team=team).count() == 2
    response = client.post(f"/teams/lab/members/{viewer.id}/remove/")
    assert response.status_code == 302 and response["Location"] == "/teams/"
    assert not Membership.objects.filter(team=team, user=viewer).exists()


def test_outsiders_and_anonymous_cannot_see_a_team(team):
    team, admin, _ = team
    outsider = _client(UserFactory())
    assert outsider.get("/teams/lab/").status_code == 404
    assert outsider.post("/teams/lab/invite/", {"username": "x", "role": "viewer"}).status_code == 404
    assert outsider.post(f"/teams/lab/members/{admin.id}/remove/").status_code == 404
    assert Client().get("/teams/lab/").status_code == 302
    assert Client().get("/teams/").status_code == 302
    assert _client(admin).post("/teams/lab/members/999999/remove/").status_code == 404


# ---- API tokens ----

def test_token_is_shown_once_listed_by_prefix_and_revocable():
    user = UserFactory()
    client = _client(user)
    response = client.post("/tokens/", {"name": "laptop"})
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    row = ApiToken.objects.get(user=user)
    content = response.content.decode()
    secret = content.split('id="new-token">', 1)[1].split("<", 1)[0]
    listing = client.get("/tokens/").content.decode()
    assert secret not in listing
    assert row.prefix in listing and "laptop" in listing and "never" in listing
    assert secret.startswith(row.prefix) and token_authenticate(secret) == user
    assert "never" not in client.get("/tokens/").content.decode()  # last used: just now
    assert client.post(f"/tokens/{row.id}/revoke/").status_code == 302
    assert token_authenticate(secret) is None
    assert "revoked" in client.get("/tokens/").content.decode()


def test_tokens_of_others_cannot_be_seen_or_revoked():
    owner, other = UserFactory(), UserFactory()
    row, _ = token_create(user=owner, name="ci")
    client = _client(other)
    assert "ci" not in client.get("/tokens/").content.decode().split("<h1>API tokens</h1>", 1)[1].split("Create a token")[0]
    assert client.post(f"/tokens/{row.id}/revoke/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
    assert Client().get("/tokens/").status_code == 302


def test_token_without_a_name_is_refused():
    user = UserFactory()
    response = _client(user).post("/tokens/", {"name": ""})
    assert response.status_code == 400 and not ApiToken.objects.exists()
