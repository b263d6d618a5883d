"""The run list's common case (one project, no query, no sort) served from the shared cache.

A page is cached as its response body under the project's `runs_version`, which the database changes in
the same transaction as any change to the project's runs, their tags or metric summaries (projects
migration 0004): a page read after a change never comes from before it. The key holds the project's path
too (a rename shows at once) and the page's offset and limit; an entry not read for CACHE_SECONDS lapses.
The version is read (with the project) before the page is built, so an entry is never older than its key.
PostgreSQL changes the version as the transaction commits, so inside a transaction (which may hold changes
of its own) the page is built, not cached.
"""

from __future__ import annotations

import orjson
from django.core.cache import cache
from django.db import connection

from webapp.api.schemas import page_fields, run_row_out
from webapp.experiments.selectors import project_run_page
from webapp.projects.models import Project

CACHE_SECONDS = 300


def project_run_page_body(project: Project, *, offset: int, limit: int) -> bytes:
    """The JSON body of one page of `project`'s runs (access already checked), newest first."""
    if connection.in_atomic_block:
        return _page_body(project, offset, limit)
    key = f"kiln:run-page:{project.id}:{project.runs_version}:{offset}:{limit}:{project.owner_label}/{project.slug}"
    body = cache.get(key)
    if body is None:
        body = _page_body(project, offset, limit)
        cache.set(key, body, CACHE_SECONDS)
    return body


def _page_body(project: Project, offset: int, limit: int) -> bytes:
    rows, count = project_run_page(project, offset=offset, limit=limit)
    return orjson.dumps({**page_fields(count, limit, offset), "items": [run_row_out(row) for row in rows]})
