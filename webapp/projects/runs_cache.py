"""Answers about a project's runs kept in the shared cache until those runs change.

An answer is cached as bytes under the project's `runs_version`, which the database changes in the same
transaction as any change to the project's runs, their tags or metric summaries (projects migration 0004:
every write path, whoever wrote it), so an answer read after a change never comes from before it. The
project must have been read (with its version) before the answer is built, so an entry is never older
than its key; the key also holds the project's path (a rename shows at once), its creation time (a project
id that a new database hands out again never meets the old one's entries) and what the request asked.
PostgreSQL changes the version as a transaction commits, so inside a transaction (which may hold changes
of its own) the answer is built, not cached. An entry lapses after CACHE_SECONDS; an answer past
MAX_KEPT_BYTES is not kept (a 100-run, 4-metric compare view is ~5 MB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection

from webapp.projects.models import Project

CACHE_SECONDS = 300
MAX_KEPT_BYTES = 16 * 1024 * 1024


def project_runs_cached(project: Project, what: str, asked: str, build: Callable[[], tuple[bytes, bool]]) -> bytes:
    """`build()`'s bytes for `what` (a name) and `asked` (the request's parameters as text), from the cache
    while `project`'s runs are unchanged; `build` also says whether its answer may be kept (not a partial one)."""
    if connection.in_atomic_block:
        return build()[0]
    identity = f"{project.owner_label}/{project.slug}\x00{project.created_at.isoformat()}\x00{asked}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    key = f"kiln:runs:{what}:{project.id}:{project.runs_version}:{digest}"
    body = cache.get(key)
    if body is None:
        body, keep = build()
        if keep and len(body) <= MAX_KEPT_BYTES:
            cache.set(key, body, CACHE_SECONDS)
    return body
