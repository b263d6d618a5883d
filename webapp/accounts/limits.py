"""How often one client may sign up or fail to sign in, counted in the shared cache (`webapp.ratelimit`)."""

from __future__ import annotations

import hashlib

from django.http import HttpRequest

from webapp import ratelimit

SIGNUP_LIMIT = (10, 3600)  # sign-up attempts per client address per hour
LOGIN_FAILURE_LIMIT = (10, 900)  # failed sign-ins per client address and username per 15 minutes
LOGIN_ADDRESS_FAILURE_LIMIT = (100, 900)  # failed sign-ins per client address, any username


def signup_attempt(request: HttpRequest) -> int | None:
    """Count one sign-up attempt; None while allowed, else the seconds until the client may try again."""
    return ratelimit.hit(f"signup:{ratelimit.client_address(request)}", limit=SIGNUP_LIMIT)


def login_blocked(request: HttpRequest, username: str) -> int | None:
    """Seconds until this client may try to sign in as `username` again, or None; counts nothing."""
    waits = [ratelimit.exceeded(bucket, limit=limit) for bucket, limit in _login_buckets(request, username)]
    return max((wait for wait in waits if wait is not None), default=None)


def login_failed(request: HttpRequest, username: str) -> None:
    for bucket, limit in _login_buckets(request, username):
        ratelimit.hit(bucket, limit=limit)


def _login_buckets(request: HttpRequest, username: str) -> list[tuple[str, tuple[int, int]]]:
    address = ratelimit.client_address(request)
    # NOTE: the username is hashed: cache keys must not hold spaces or control characters.
    user = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [(f"login-failed:{address}:{user}", LOGIN_FAILURE_LIMIT), (f"login-failed:{address}", LOGIN_ADDRESS_FAILURE_LIMIT)]
