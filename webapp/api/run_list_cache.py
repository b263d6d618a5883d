"""The run list's common case (one project, no query, no sort), kept until the project's runs change
(`webapp.projects.runs_cache`)."""

from __future__ import annotations

import orjson

from webapp.api.schemas import page_fields, run_row_out
from webapp.experiments.selectors import project_run_page
from webapp.projects.models import Project
from webapp.projects.runs_cache import project_runs_cached


def project_run_page_body(project: Project, *, offset: int, limit: int) -> bytes:
    """The JSON body of one page of `project`'s runs (access already checked), newest first."""

    def build() -> tuple[bytes, bool]:
        rows, count = project_run_page(project, offset=offset, limit=limit)
        return orjson.dumps({**page_fields(count, limit, offset), "items": [run_row_out(row) for row in rows]}), True

    return project_runs_cached(project, "api-page", f"{offset}:{limit}", build)
