"""Sign-up and sign-in are limited per client address: past the limit a clear 429 page, and nothing created."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from webapp.accounts import limits

from ..factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "pw-for-tests-123"  # the factories' password
NEW_PASSWORD = "a-long-pass-phrase-42"


def _signup(client: Client, username: str, password: str = NEW_PASSWORD):
    return client.post("/accounts/signup/", {"username": username, "email": "", "password1": password, "password2": password})


def test_sign_ups_past_the_hourly_limit_get_429_and_create_nobody():
    allowed = limits.SIGNUP_LIMIT[0]
    client = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(allowed):
        assert _signup(client, f"bad{i}", password="short").status_code == 400  # every attempt counts
    response = _signup(client, "newbie")
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 3600
    assert b"Too many sign-up attempts from your address" in response.content
    assert not User.objects.exists()
    other = _signup(Client(REMOTE_ADDR="203.0.113.8"), "newbie")  # the limit is per address
    assert other.status_code == 302 and User.objects.filter(username="newbie").exists()


def test_failed_sign_ins_lock_that_username_for_that_address_only():
    UserFactory(username="ada")
    UserFactory(username="bob")
    client = Client(REMOTE_ADDR="198.51.100.1")
    for _ in range(limits.LOGIN_FAILURE_LIMIT[0]):
        assert client.post("/accounts/login/", {"username": "ada", "password": "wrong"}).status_code == 200
    locked = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})  # even the right password
    assert locked.status_code == 429 and "Retry-After" in locked
    assert b"Too many failed sign-ins" in locked.content and "_auth_user_id" not in client.session
    assert client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}).status_code == 302
    elsewhere = Client(REMOTE_ADDR="198.51.100.2")
    assert elsewhere.post("/accounts/login/", {"username": "ada", "password": PASSWORD}).status_code == 302


def test_one_address_guessing_many_usernames_is_stopped(monkeypatch):
    monkeypatch.setattr(limits, "LOGIN_ADDRESS_FAILURE_LIMIT", (3, 900))
    UserFactory(username="ada")
    client = Client(REMOTE_ADDR="198.51.100.9")
    for name in ("x1", "x2", "x3"):
        client.post("/accounts/login/", {"username": name, "password": "guess"})
    assert client.post("/accounts/login/", {"username": "ada", "password": PASSWORD}).status_code == 429
    assert client.post("/", {"username": "ada", "password": PASSWORD}).status_code == 429  # the home page's form too


def test_successful_sign_ins_do_not_count():
    UserFactory(username="ada")
    client = Client(REMOTE_ADDR="198.51.100.3")
    for _ in range(limits.LOGIN_FAILURE_LIMIT[0] + 2):
        assert client.post("/accounts/login/", {"username": "ada", "password": PASSWORD}).status_code == 302
        client.logout()


def test_the_admin_login_is_the_limited_one_and_leads_back_to_the_admin():
    UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="198.51.100.20")
    assert client.get("/admin/").url.startswith("/admin/login/?next=/admin/")
    for _ in range(limits.LOGIN_FAILURE_LIMIT[0]):
        assert client.post("/admin/login/?next=/admin/", {"username": "root", "password": "wrong"}).status_code == 200
    assert client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD}).status_code == 429
    fresh = Client(REMOTE_ADDR="198.51.100.21")
    signed_in = fresh.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert signed_in.status_code == 302 and signed_in.url == "/admin/"
    assert fresh.get("/admin/").status_code == 200
