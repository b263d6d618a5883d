"""Fixed-window request limits kept in Django's cache (Redis when REDIS_URL is set), shared by all processes."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

DEFAULT_TOKEN_LIMIT = (1200, 60)  # requests per window of seconds, per API token
LOGIN_LIMIT = (20, 60)  # password attempts per client address


def token_limit() -> tuple[int, int]:
    requests, seconds = getattr(settings, "KILN_API_RATE_LIMIT", DEFAULT_TOKEN_LIMIT)
    return int(requests), int(seconds)


def hit(bucket: str, *, limit: tuple[int, int]) -> int | None:
    """Count one request in `bucket`; None while under the limit, else the seconds until the window resets."""
    allowed, window = limit
    now = time.time()
    start = int(now // window) * window
    key = f"kiln:rl:{bucket}:{start}"
    # NOTE: incr() is atomic on Redis; the file cache may miscount a little under races, never block forever.
    try:
        count = cache.incr(key)
    except ValueError:  # the window's first request (or a lost race to create it)
        count = 1 if cache.add(key, 1, timeout=window + 1) else cache.incr(key)
    if count <= allowed:
        return None
    return max(1, int(start + window - now + 0.999))
