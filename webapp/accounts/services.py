"""Writes for accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model

from webapp.accounts.names import owner_name_check


@dataclass(frozen=True)
class AdminCreated:
    username: str
    generated_password: str | None  # set only when Kiln made one up; shown once, never stored in clear


def first_admin_ensure(*, username: str, password: str | None) -> AdminCreated | None:
    """Create the first superuser unless one exists; None when there was nothing to do.

    ValidationError when a user or team holds the name already (the operator may pick a reserved word).
    """
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    owner_name_check(username, field="username", allow_reserved=True)
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    users.objects.create_superuser(username=username, email="", password=password)
    return AdminCreated(username=username, generated_password=generated)
