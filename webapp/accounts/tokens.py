"""API tokens: created and shown once, stored as a SHA-256 digest, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from webapp.accounts.models import ApiToken

TOKEN_PREFIX = "kiln_"  # noqa: S105 -- a public marker, not a secret
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # avoid a write on every request


def token_digest(token: str) -> str:
    # NOTE: tokens carry 240 random bits, so an unsalted fast hash is safe and allows an indexed lookup.
    return hashlib.sha256(token.encode()).hexdigest()


def token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the token text, which is never retrievable again."""
    name = name.strip()[:100] or "token"
    token = TOKEN_PREFIX + secrets.token_urlsafe(30)
    row = ApiToken.objects.create(user=user, name=name, prefix=token[:12], digest=token_digest(token))
    return row, token


def token_revoke(*, user: User, token_id: int) -> bool:
    return bool(
        ApiToken.objects.filter(id=token_id, user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    )


def token_authenticate(token: str) -> User | None:
    """The active user owning a live token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(id=row.id).update(last_used_at=now)
    return row.user
