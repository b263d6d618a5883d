"""Tokens: sign-in, bearer auth, revocation, rate limits."""

from __future__ import annotations

import uuid

import pytest

from webapp.accounts.models import ApiToken
from webapp.accounts.tokens import token_revoke
from webapp.api import ratelimit

from ..factories import UserFactory


def test_sign_in_returns_a_token_that_then_authenticates(api, db):
    UserFactory(username="ada")
    response = api.post("/api/auth/token", {"username": "ada", "password": "pw-for-tests-123", "name": "laptop"})
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("kiln_") and body["name"] == "laptop"
    me = api.get("/api/auth/me", token=body["token"])
    assert me.status_code == 200 and me.json()["username"] == "ada"
    assert ApiToken.objects.get().digest != body["token"]  # only the digest is stored


@pytest.mark.parametrize("password", ["wrong", ""])
def test_a_wrong_password_gets_401_and_no_token(api, db, password):
    UserFactory(username="ada")
    response = api.post("/api/auth/token", {"username": "ada", "password": password})
    assert response.status_code == 401 and response.json()["code"] == "bad_credentials"
    assert ApiToken.objects.count() == 0


def test_an_inactive_users_token_stops_working(world):
    user = world.users["viewer"]
    user.is_active = False
    user.save()
    assert world.api("viewer").get("/api/projects").status_code == 401


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Basic abc", "Bearer kiln_" + "x" * 40, "Token kiln_x"])
def test_a_bad_authorization_header_gets_401(world, header):
    response = world.api("owner").client.get("/api/projects", headers={"Authorization": header})
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


def test_revoking_a_token_takes_effect_at_once(world):
    api = world.api("owner")
    tokens = api.get("/api/auth/tokens").json()
    assert len(tokens) == 1 and tokens[0]["revoked_at"] is None
    assert api.delete(f"/api/auth/tokens/{tokens[0]['id']}").status_code == 204
    assert api.get("/api/projects").status_code == 401


def test_a_token_revoked_elsewhere_stops_working(world):
    api = world.api("owner")
    assert api.get("/api/projects").status_code == 200
    token_revoke(user=world.users["owner"], token_id=ApiToken.objects.get(user=world.users["owner"]).id)
    assert api.get("/api/projects").status_code == 401


def test_you_cannot_revoke_someone_elses_token(world):
    victim = ApiToken.objects.get(user=world.users["owner"])
    assert world.api("outsider").delete(f"/api/auth/tokens/{victim.id}").status_code == 404
    assert world.api("owner").get("/api/projects").status_code == 200


def test_too_many_requests_with_one_token_get_429_with_retry_after(world, settings):
    settings.KILN_API_RATE_LIMIT = (3, 60)
    api = world.api("owner")
    assert [api.get("/api/projects").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/api/projects")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert world.api("viewer").get("/api/projects").status_code == 200  # the limit is per token


def test_repeated_sign_in_attempts_are_limited(api, db):
    for _ in range(20):
        api.post("/api/auth/token", {"username": "nobody", "password": "guess"})
    response = api.post("/api/auth/token", {"username": "nobody", "password": "guess"})
    assert response.status_code == 429 and "Retry-After" in response


def test_the_limit_is_shared_through_redis_when_configured(settings, redis_url):
    """Counters live in the shared cache, so every web process sees the same count."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    bucket = f"test:{uuid.uuid4().hex}"
    assert [ratelimit.hit(bucket, limit=(2, 60)) for _ in range(2)] == [None, None]
    retry_after = ratelimit.hit(bucket, limit=(2, 60))
    assert retry_after is not None and 1 <= retry_after <= 60


def test_a_token_request_is_its_tokens_user_whatever_session_cookie_it_carries(db):
    """Header-authenticated API requests skip the cookie layers (webapp.api.middleware): no session is read or made."""
    from django.test import Client

    from webapp.accounts.tokens import token_create

    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    token = token_create(user=ada, name="t")[1]
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["username"] == "ada"
    assert not response.cookies  # no session saved, no CSRF cookie set
    assert response["Content-Security-Policy"] and response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert client.get("/api/auth/me").status_code == 401  # the session alone signs nobody in to the API
    revoked = client.get("/api/auth/me", headers={"Authorization": "Bearer kiln_not-a-token"})
    assert revoked.status_code == 401 and revoked.json()["code"] == "unauthorized"


def test_an_authorization_header_does_not_switch_off_csrf_on_pages(db):
    from django.test import Client

    from webapp.accounts.tokens import token_create

    ada = UserFactory(username="ada")
    token = token_create(user=ada, name="t")[1]
    client = Client(enforce_csrf_checks=True)
    client.force_login(ada)
    before = ApiToken.objects.count()
    response = client.post("/tokens/", {"name": "ci"}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert ApiToken.objects.count() == before
    page = client.get("/tokens/", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200 and b"ada" in page.content  # the page still signs in by its session
