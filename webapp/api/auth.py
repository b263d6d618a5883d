"""Bearer-token authentication with a per-token rate limit."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja.security import HttpBearer

from webapp.accounts.tokens import token_authenticate, token_digest
from webapp.api import ratelimit
from webapp.api.errors import ApiError


class ApiRequest(HttpRequest):
    """What handlers receive: `auth` is the token's user (for typing; ninja sets it)."""

    auth: User


class TokenAuth(HttpBearer):
    """`Authorization: Bearer kiln_...`; the user becomes `request.user` for the handlers."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = token_authenticate(token.strip())
        if user is None:
            return None
        retry_after = ratelimit.hit(f"token:{token_digest(token.strip())[:32]}", limit=ratelimit.token_limit())
        if retry_after is not None:
            raise ApiError(
                429, "rate_limited", f"Too many requests with this token; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )
        request.user = user
        return user
