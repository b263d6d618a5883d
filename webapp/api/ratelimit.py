"""The API's request limits; the counting itself is `webapp.ratelimit`, shared with the pages."""

from __future__ import annotations

from django.conf import settings

from webapp.config import DEFAULT_API_RATE_LIMIT
from webapp.ratelimit import hit

__all__ = ["DEFAULT_TOKEN_LIMIT", "LOGIN_LIMIT", "hit", "token_limit"]

DEFAULT_TOKEN_LIMIT = DEFAULT_API_RATE_LIMIT  # requests per window of seconds, per API token (KILN_API_RATE_LIMIT)
LOGIN_LIMIT = (20, 60)  # password attempts per client address


def token_limit() -> tuple[int, int]:
    requests, seconds = getattr(settings, "KILN_API_RATE_LIMIT", DEFAULT_TOKEN_LIMIT)
    return int(requests), int(seconds)
