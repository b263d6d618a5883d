"""`exceeded` reads a window's count without adding to it, on every cache backend the limiter supports."""

import uuid

import pytest

from webapp import ratelimit


@pytest.fixture(params=["locmem", "file", "redis"])
def cache_backend(request, settings, tmp_path):
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    elif request.param == "file":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                                       "LOCATION": str(tmp_path / "cache")}}
    return request.param


def test_exceeded_counts_nothing_and_turns_at_the_limit(cache_backend):
    bucket = f"test:{uuid.uuid4().hex}"
    assert ratelimit.exceeded(bucket, limit=(2, 60)) is None
    assert ratelimit.exceeded(bucket, limit=(2, 60)) is None  # looking twice adds nothing
    ratelimit.hit(bucket, limit=(2, 60))
    assert ratelimit.exceeded(bucket, limit=(2, 60)) is None
    ratelimit.hit(bucket, limit=(2, 60))
    wait = ratelimit.exceeded(bucket, limit=(2, 60))
    assert wait is not None and 1 <= wait <= 60
    assert ratelimit.exceeded(f"{bucket}-other", limit=(2, 60)) is None


def test_client_address_trusts_only_the_configured_proxies(settings, rf):
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4, 10.0.0.1")
    settings.KILN_TRUSTED_PROXIES = 0
    assert ratelimit.client_address(request) == "10.0.0.2"  # no proxy: the header is the client's to forge
    settings.KILN_TRUSTED_PROXIES = 1
    assert ratelimit.client_address(request) == "10.0.0.1"
    settings.KILN_TRUSTED_PROXIES = 2
    assert ratelimit.client_address(request) == "198.51.100.4"  # the forged left-most entry is never used
    settings.KILN_TRUSTED_PROXIES = 4
    assert ratelimit.client_address(request) == "10.0.0.2"  # fewer entries than proxies: fall back


def test_a_redis_counter_expires_after_its_window_and_counts_every_hit(settings, redis_url):
    from django.core.cache import caches

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    bucket = f"test:{uuid.uuid4().hex}"
    assert [ratelimit.hit(bucket, limit=(3, 60)) for _ in range(3)] == [None, None, None]
    wait = ratelimit.hit(bucket, limit=(3, 60))  # the fourth: 429 territory
    assert wait is not None and 1 <= wait <= 60
    cache = caches["default"]
    key, _, _ = ratelimit._window(bucket, 60)
    client = ratelimit._redis_client(cache)
    stored = cache.make_and_validate_key(key)
    assert int(client.get(stored)) == 4
    assert 55 <= client.ttl(stored) <= 61  # set once, by the hit that made the counter
    client.delete(stored)
