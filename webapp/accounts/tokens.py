"""API tokens: created and shown once, stored as a SHA-256 digest, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, timedelta
from functools import cache

from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from webapp.accounts.models import ApiToken
from webapp.db import fetch_fixed

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
    """The active user owning a live token, or None. One indexed, prepared query: this runs on every API request."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    sql, fields, datetimes = _token_query()
    rows = fetch_fixed(sql, [token_digest(token)])
    if not rows:
        return None
    token_id, last_used_at, *values = rows[0]
    if connection.vendor == "sqlite":  # SQLite's datetimes come back naive, in UTC
        last_used_at = last_used_at and last_used_at.replace(tzinfo=UTC)
        for index in datetimes:
            values[index] = values[index] and values[index].replace(tzinfo=UTC)
    now = timezone.now()
    if last_used_at is None or now - last_used_at > _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(id=token_id).update(last_used_at=now)
    return User.from_db(connection.alias, fields, values)


@cache
def _token_query() -> tuple[str, list[str], list[int]]:
    """The lookup's SQL without the ORM's per-call compiling, the user's field names, and which are datetimes."""
    quote = connection.ops.quote_name
    fields = User._meta.concrete_fields
    tokens, users = quote(ApiToken._meta.db_table), quote(User._meta.db_table)
    sql = (
        f"SELECT t.id, t.last_used_at, {', '.join(f'u.{quote(str(field.column))}' for field in fields)} "  # noqa: S608
        f"FROM {tokens} t JOIN {users} u ON u.id = t.user_id "
        "WHERE t.digest = %s AND t.revoked_at IS NULL AND u.is_active"
    )
    datetimes = [index for index, field in enumerate(fields) if field.get_internal_type() == "DateTimeField"]
    return sql, [field.attname for field in fields], datetimes
