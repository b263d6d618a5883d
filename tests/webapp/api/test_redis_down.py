"""Redis away (finding 5): the API, sign-in and sign-up keep working; limits count in this process."""

from __future__ import annotations

import logging

import pytest

from webapp import cache as shared_cache
from webapp import ratelimit
from webapp.cache import CacheOutage, ResilientRedisCache

from ..factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings, free_port, monkeypatch):
    """The shared cache on a port nobody listens on, with this test's own outage state."""
    settings.CACHES = {"default": {"BACKEND": "webapp.cache.ResilientRedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port}/0",
                                   "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}}}
    outage = CacheOutage()
    monkeypatch.setattr(shared_cache, "SHARED_CACHE", outage)
    monkeypatch.setattr(ratelimit, "SHARED_CACHE", outage)
    monkeypatch.setattr(ratelimit, "_LOCAL", ratelimit.LocalWindows())
    return outage


def test_api_reads_and_writes_work_while_redis_is_down_and_the_outage_is_logged_once(world, redis_down, caplog):
    api = world.api("owner")
    with caplog.at_level(logging.WARNING, logger="kiln.cache"):
        created = api.post("/api/runs", {"project": world.path, "spec": {"recipe": {"model": "mlp"}}})
        assert created.status_code == 201, created.content
        run_id = created.json()["runs"][0]["id"]
        assert api.get(f"/api/runs/{run_id}").status_code == 200
        assert api.get("/api/projects").status_code == 200
    assert redis_down.away
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "unreachable" in caplog.records[0].message and len(caplog.records) == 1


def test_the_token_limit_still_holds_in_this_process_while_redis_is_down(world, redis_down, settings):
    settings.KILN_API_RATE_LIMIT = (3, 60)
    api = world.api("viewer")
    assert [api.get("/api/projects").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/api/projects")
    assert limited.status_code == 429 and "Retry-After" in limited


def test_sign_up_and_sign_in_work_while_redis_is_down(client, redis_down):
    response = client.post("/accounts/signup/", {
        "username": "newbie", "email": "", "password1": "a-long-pass-phrase-42", "password2": "a-long-pass-phrase-42",
    })
    assert response.status_code == 302
    client.logout()
    UserFactory(username="carol", password="a-long-pass-phrase-42")
    assert client.post("/accounts/login/", {"username": "carol", "password": "wrong"}).status_code == 200
    assert client.post("/accounts/login/", {"username": "carol", "password": "a-long-pass-phrase-42"}).status_code == 302


def test_the_cache_reads_as_a_miss_and_recovery_is_logged(settings, redis_down, redis_url, monkeypatch, caplog):
    monkeypatch.setattr(shared_cache, "RETRY_SECONDS", 0.0)  # try the server at every call
    down = ResilientRedisCache(settings.CACHES["default"]["LOCATION"], {})
    down.set("k", 1)
    assert down.get("k", "miss") == "miss" and down.get_many(["k"]) == {} and redis_down.away
    up = ResilientRedisCache(redis_url, {})
    with caplog.at_level(logging.INFO, logger="kiln.cache"):
        up.set("kiln:test:k", 1, timeout=5)
    assert up.get("kiln:test:k") == 1 and not redis_down.away
    assert any("reachable again" in r.message for r in caplog.records)
