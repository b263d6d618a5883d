"""The shared cache (Redis when REDIS_URL is set) is a speed-up, never a dependency of a request.

While Redis is unreachable `ResilientRedisCache` answers reads as misses and drops writes, and
the rate limiter (`webapp.ratelimit`) counts in this process; `SHARED_CACHE` logs the outage
once when it starts and once when it ends, and tries Redis again every few seconds meanwhile
(not at every request: an unreachable host would cost each one a connect timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger("kiln.cache")
CACHE_DOWN = (RedisError, OSError)  # what an unreachable Redis raises (its ConnectionError is a RedisError)
RETRY_SECONDS = 5.0
T = TypeVar("T")


class CacheOutage:
    """Whether this process finds the shared cache away; one instance per process (`SHARED_CACHE`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._next_try = 0.0

    @property
    def away(self) -> bool:
        return self._since is not None

    def skip(self) -> bool:
        """True while away and not yet time to try the cache again."""
        return self._since is not None and time.monotonic() < self._next_try

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            now = time.monotonic()
            self._next_try = now + RETRY_SECONDS
            if self._since is None:
                self._since = now
                log.warning("shared cache (Redis) unreachable: %s; rate limits count in this process and cached "
                            "series are rebuilt until it answers (retrying every %g s)",
                            _first_line(exc), RETRY_SECONDS)

    def answered(self) -> None:
        if self._since is None:  # the common case: no lock
            return
        with self._lock:
            if self._since is not None:
                log.info("shared cache (Redis) reachable again after %.0f s; rate limits are shared again",
                         time.monotonic() - self._since)
                self._since = None

    def guard(self, call: Callable[[], T], fallback: T) -> T:
        """`call()`, or `fallback` while the cache is away."""
        if self.skip():
            return fallback
        try:
            result = call()
        except CACHE_DOWN as exc:
            self.failed(exc)
            return fallback
        self.answered()
        return result


SHARED_CACHE = CacheOutage()


class ResilientRedisCache(RedisCache):
    """Django's RedisCache, with an outage read as misses and writes dropped (logged by `SHARED_CACHE`)."""

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).get(key, default, version), default)

    def get_many(self, keys: Any, version: int | None = None) -> dict[str, Any]:
        return SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).get_many(keys, version), {})

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).has_key(key, version), False)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).set(key, value, timeout, version), None)

    def set_many(self, data: dict[str, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[str]:
        return SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).set_many(data, timeout, version), list(data))

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).add(key, value, timeout, version), False)

    def delete(self, key: Any, version: int | None = None) -> bool:
        return SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).delete(key, version), False)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        SHARED_CACHE.guard(lambda: super(ResilientRedisCache, self).delete_many(keys, version), None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
