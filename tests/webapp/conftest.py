"""Every webapp test starts with an empty in-process cache: rate-limit counters never carry over between tests or runs."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(autouse=True)
def _private_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex}}
