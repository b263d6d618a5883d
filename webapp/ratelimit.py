"""Fixed-window limits shared by all web processes: in Redis when REDIS_URL is set, else in files.

Used for API tokens (`webapp.api.ratelimit`), sign-in and sign-up (`webapp.accounts.limits`).
Every API request counts once, so a hit costs one round trip: one script on Redis (INCR, and
EXPIRE when it made the counter), and one O_APPEND write to a per-window file next to the file
cache (its length is the count). Any other cache backend (tests may configure one) goes through Django's cache API.
While Redis is unreachable each process counts in its own windows (`LocalWindows`): limits are
then per process, and no request fails for it (`webapp.cache.SHARED_CACHE` logs the outage).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

from webapp.cache import CACHE_DOWN, SHARED_CACHE

_FILES_FOLDER = "ratelimit"


class LocalWindows:
    """Fixed-window counters in this process: the fallback while the shared cache is away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, when its window ends)
        self._next_sweep = 0.0

    def hit(self, key: str, window: int) -> int:
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:  # keys name their window: ended ones are never read again
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                self._next_sweep = now + 10
            count, ends = self._counts.get(key, (0, now + window))
            self._counts[key] = (count + 1, ends)
            return count + 1

    def count(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, (0, 0.0))[0]


_LOCAL = LocalWindows()


def hit(bucket: str, *, limit: tuple[int, int]) -> int | None:
    """Count one request in `bucket`; None while under the limit, else the seconds until the window resets."""
    allowed, window = limit
    key, start, now = _window(bucket, window)
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        count = _shared(lambda: _redis_count(cache, key, window), lambda: _LOCAL.hit(key, window))
    elif isinstance(cache, FileBasedCache):
        count = _file_count(_files_folder(), key, start, window)
    else:
        count = _cache_count(cache, key, window)
    if count <= allowed:
        return None
    return _retry_after(start, window, now)


def exceeded(bucket: str, *, limit: tuple[int, int]) -> int | None:
    """Whether `bucket` already holds `allowed` hits this window (seconds until it resets), counting nothing."""
    allowed, window = limit
    key, start, now = _window(bucket, window)
    cache = caches["default"]
    if isinstance(cache, FileBasedCache):
        try:
            count = os.stat(_file_path(_files_folder(), key, start, window)).st_size
        except FileNotFoundError:
            count = 0
    elif isinstance(cache, RedisCache):  # Redis counters are plain integers, read back as they are
        count = _shared(lambda: int(_redis_get(cache, key) or 0), lambda: _LOCAL.count(key))
    else:
        count = int(cache.get(key) or 0)
    return _retry_after(start, window, now) if count >= allowed else None


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind N trusted proxies the one the outermost of them saw.

    Each proxy appends the address it was reached from to X-Forwarded-For, so the N-th entry from the
    right is the last one a trusted proxy wrote; anything left of it is the client's to forge.
    """
    hops = getattr(settings, "KILN_TRUSTED_PROXIES", 0)
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _window(bucket: str, window: int) -> tuple[str, int, float]:
    """(the counter's key, when the current window started, now)."""
    now = time.time()
    start = int(now // window) * window
    return f"kiln:rl:{bucket}:{start}", start, now


def _retry_after(start: int, window: int, now: float) -> int:
    return max(1, int(start + window - now + 0.999))


def _files_folder() -> Path:
    return Path(str(settings.CACHES["default"]["LOCATION"])) / _FILES_FOLDER


def _file_path(folder: Path, key: str, start: int, window: int) -> Path:
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}-{start + window}"  # named by when it ends


def _shared(count: Callable[[], int], local: Callable[[], int]) -> int:
    """The shared count, or this process's while the shared cache is away."""
    if not SHARED_CACHE.skip():
        try:
            result = count()
        except CACHE_DOWN as exc:
            SHARED_CACHE.failed(exc)
        else:
            SHARED_CACHE.answered()
            return result
    return local()


_REDIS_CLIENTS: weakref.WeakKeyDictionary[RedisCache, Any] = weakref.WeakKeyDictionary()  # one per cache object


def _redis_client(cache: RedisCache) -> Any:
    """A redis-py client on the cache's (first, written) server, made once per cache object (one per thread).

    Django's `get_client` builds a new client per call, which costs more than the round trip it serves.
    """
    client = _REDIS_CLIENTS.get(cache)
    if client is None:
        client = _REDIS_CLIENTS[cache] = cache._cache.get_client(write=True)
    return client


def _redis_get(cache: RedisCache, key: str) -> bytes | str | None:
    """The raw counter (an outage raises here, where `cache.get` would read it as a miss)."""
    key = cache.make_and_validate_key(key)
    value: bytes | str | None = _redis_client(cache).get(key)
    return value


# INCR, then the expiry on the counter it just created: atomic (a script runs alone), one command.
_COUNT_SCRIPT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"
_REDIS_SCRIPTS: weakref.WeakKeyDictionary[RedisCache, Any] = weakref.WeakKeyDictionary()


def _redis_count(cache: RedisCache, key: str, window: int) -> int:
    """Increment the counter, giving it its expiry when this made it: one round trip, atomic.

    NOTE: a script (EVALSHA, loaded again by redis-py should the server have lost it) costs less than the
    pipelined SET NX EX + INCR it replaces; Django's RedisCache has neither, redis-py's client both.
    """
    key = cache.make_and_validate_key(key)
    script = _REDIS_SCRIPTS.get(cache)
    if script is None:
        script = _REDIS_SCRIPTS[cache] = _redis_client(cache).register_script(_COUNT_SCRIPT)
    return int(script(keys=[key], args=[window + 1]))


def _file_count(folder: Path, key: str, start: int, window: int) -> int:
    """Append one byte to the window's file; the offset after an O_APPEND write is this request's exact count."""
    path = _file_path(folder, key, start, window)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b".")
        count = os.lseek(fd, 0, os.SEEK_CUR)
    finally:
        os.close(fd)
    if count == 1:  # a new window for this bucket: sweep away windows that have ended
        _sweep(folder, start)
    return count


def _sweep(folder: Path, now: int) -> None:
    for entry in os.scandir(folder):
        end = entry.name.rpartition("-")[2]
        if end.isdigit() and int(end) < now:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:  # another process swept it first
                pass


def _cache_count(cache, key: str, window: int) -> int:
    # NOTE: the generic path; a backend without atomic incr may miscount a little under races, never block.
    try:
        return int(cache.incr(key))
    except ValueError:  # the window's first request (or a lost race to create it)
        return 1 if cache.add(key, 1, timeout=window + 1) else int(cache.incr(key))
