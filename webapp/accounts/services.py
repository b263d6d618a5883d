"""Writes for accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model


@dataclass(frozen=True)
class AdminCreated:
    username: str
    generated_password: str | None  # set only when Kiln made one up; shown once, never stored in clear


def first_admin_ensure(*, username: str, password: str | None) -> AdminCreated | None:
    """Create the first superuser unless one exists; None when there was nothing to do."""
    users = get_user_model()
    if users.objects.filter(is_superuser=True).exists():
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    users.objects.create_superuser(username=username, email="", password=password)
    return AdminCreated(username=username, generated_password=generated)
