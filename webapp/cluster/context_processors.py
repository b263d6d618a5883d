"""Template context every page gets from the cluster: the warning when code runs may go unisolated."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def isolation(request: HttpRequest) -> dict:
    """`unisolated_code_allowed`: KILN_ALLOW_UNISOLATED_CODE is set (base.html then shows a banner)."""
    return {"unisolated_code_allowed": settings.CONFIG.allow_unisolated_code}
