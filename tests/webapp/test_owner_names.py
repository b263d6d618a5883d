"""Usernames and team slugs are one namespace on every write path; old clashes are resolved by the migration."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from webapp.accounts.forms import AdminUserAddForm, AdminUserEditForm
from webapp.accounts.models import Team
from webapp.accounts.names import owner_clashes_resolve
from webapp.accounts.services import first_admin_ensure
from webapp.accounts.teams import team_create

from .factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
MIGRATION = importlib.import_module("webapp.accounts.migrations.0002_owner_namespace_invitations")


@pytest.fixture(autouse=True)
def _fast(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}}


def _signup(username: str):
    return Client().post("/accounts/signup/", {"username": username, "password1": "a-long-pass-42", "password2": "a-long-pass-42"})


def test_sign_up_refuses_a_teams_name_in_any_case():
    TeamFactory(slug="vision")
    for name in ("vision", "Vision"):
        response = _signup(name)
        assert response.status_code == 400
        assert "The name &#x27;" + name + "&#x27; is taken by a team" in response.content.decode()
    assert not User.objects.exists()


def test_sign_up_refuses_reserved_names():
    for name in ("admin", "API", "share", "teams", "healthz"):
        response = _signup(name)
        assert response.status_code == 400 and "is reserved by Kiln" in response.content.decode(), name
    assert not User.objects.exists()
    assert _signup("dave").status_code == 302


def test_a_team_cannot_take_a_users_name_or_a_reserved_one():
    ann = UserFactory(username="Ann")
    with pytest.raises(ValidationError, match="'ann' is taken by a user"):
        team_create(user=ann, name="ANN")
    with pytest.raises(ValidationError, match="reserved"):
        team_create(user=ann, name="Static")
    assert not Team.objects.exists()


def test_the_first_admin_may_be_called_admin_but_not_after_a_team():
    TeamFactory(slug="ops")
    with pytest.raises(ValidationError, match="taken by a team"):
        first_admin_ensure(username="ops", password="a-long-pass-42")
    assert first_admin_ensure(username="admin", password="a-long-pass-42") is not None
    assert User.objects.get().username == "admin"


def test_the_django_admin_forms_refuse_a_teams_name():
    TeamFactory(slug="ops")
    data = {"username": "ops", "password1": "a-long-pass-42", "password2": "a-long-pass-42", "usable_password": "true"}
    form = AdminUserAddForm(data)
    assert not form.is_valid() and "taken by a team" in form.errors["username"][0]
    user = UserFactory(username="olga")
    edit = AdminUserEditForm({"username": "ops", "date_joined": user.date_joined}, instance=user)
    assert not edit.is_valid() and "taken by a team" in edit.errors["username"][0]
    keep = AdminUserEditForm({"username": "olga", "date_joined": user.date_joined}, instance=user)
    assert "username" not in keep.errors  # a user keeps their own name


def test_any_other_write_path_is_stopped_by_the_model_guard():
    TeamFactory(slug="ops")
    with pytest.raises(ValidationError, match="taken by a team"):
        User.objects.create_user(username="Ops")
    user = UserFactory(username="olga")
    user.username = "ops"
    with pytest.raises(ValidationError):
        user.save()
    user.refresh_from_db()
    user.save(update_fields=["last_login"])  # a sign-in's save is not a rename
    assert User.objects.filter(username="olga").exists()


def test_existing_clashes_are_renamed_deterministically_and_reported(capsys):
    User.objects.bulk_create([User(username="dave"), User(username="Vision")])  # rows from before the rule
    for slug in ("vision", "dave", "dave-team", "api", "fine"):
        TeamFactory(slug=slug)
    MIGRATION.resolve_owner_clashes(apps, None)
    assert sorted(Team.objects.values_list("slug", flat=True)) == [
        "api-team", "dave-team", "dave-team-2", "fine", "vision-team",
    ]
    report = capsys.readouterr().out
    assert "the team 'vision' clashed with a user or a reserved name; it is now 'vision-team'" in report
    assert "'dave' clashed" in report and "now 'dave-team-2'" in report and "'api' clashed" in report
    assert owner_clashes_resolve(users=User, teams=Team) == []  # nothing left to resolve
