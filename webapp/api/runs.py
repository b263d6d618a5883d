"""/api/runs: submit (JSON or multipart with code), list with a query language, read, cancel, re-run, delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from ninja import File, Form, Query, Router, Schema, Status, UploadedFile
from ninja.decorators import decorate_view
from pydantic import Field

from webapp.api.auth import ApiRequest
from webapp.api.errors import ApiError, ErrorOut
from webapp.api.query import QueryError, parse_query, parse_sort
from webapp.api.run_list_cache import project_run_page_body
from webapp.api.schemas import (
    MAX_PAGE,
    BodyIn,
    Id,
    ProjectRef,
    RunDetailOut,
    RunPage,
    SubmittedOut,
    Text,
    fast_json,
    page_fields,
    run_detail_out,
    run_row_out,
)
from webapp.experiments.code import MAX_CODE_BYTES
from webapp.experiments.lifecycle import run_cancel, run_delete
from webapp.experiments.selectors import (
    run_detail_for,
    run_for,
    run_page,
    runs_detailed,
    runs_for_listing,
)
from webapp.experiments.spec import SpecError, parse_spec_text
from webapp.experiments.submit import CodeUpload, Submitted, run_resubmit, run_submit
from webapp.projects.selectors import project_by_ref
from webapp.uploads import upload_limit

router = Router(tags=["runs"])
Scalar = bool | int | float | str
_SUBMIT_ERRORS = {403: ErrorOut, 404: ErrorOut, 413: ErrorOut, 422: ErrorOut}


class SubmitIn(BodyIn):
    project: ProjectRef
    spec: dict[str, Any] = Field(description="The experiment spec: recipe, params, resources (gpus, max_minutes, "
                                             "memory_gb: host memory in GB, default KILN_RUN_MEMORY_GB), sweep, ...")
    gpus: int | None = Field(None, ge=0, le=64, description="Overrides spec.resources.gpus")
    params: dict[str, Scalar] | None = Field(None, description="Merged over spec.params")


class ListIn(Schema):
    project: ProjectRef | None = Field(None, description="Project id or owner/slug; omit for every run you can see")
    query: Text = Field("", max_length=2000, description="e.g. state IN (running, queued) AND params.lr < 0.01 OR tags = baseline")
    sort: Text = Field("", max_length=500, description="Comma-separated fields, '-' for descending, e.g. -metrics.accuracy,name")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=10**9)


class CancelOut(Schema):
    cancelled: bool
    run: RunDetailOut


@router.post("", response={201: SubmittedOut, **_SUBMIT_ERRORS})
def submit_run(request: ApiRequest, payload: SubmitIn) -> Status:
    """Submit a recipe run (or a sweep of them) from a JSON spec."""
    project = project_by_ref(request.auth, payload.project)
    spec = _with_overrides(payload.spec, payload.gpus, payload.params)
    return Status(201, _submitted_out(run_submit(user=request.auth, project=project, spec=spec)))


class UploadIn(Schema):
    project: ProjectRef
    spec: Text = Field("", max_length=1_000_000, description="The spec as YAML or JSON text")
    gpus: int | None = Field(None, ge=0, le=64, description="Overrides spec.resources.gpus")
    params: Text = Field("", max_length=100_000, description='JSON object merged over spec.params, e.g. {"lr": 0.01}')


@router.post("/upload", response={201: SubmittedOut, **_SUBMIT_ERRORS})
@decorate_view(upload_limit(MAX_CODE_BYTES))
def submit_upload(request: ApiRequest, form: Form[UploadIn], code: File[UploadedFile | None] = None) -> Status:
    """Submit with a form: `code` (a .py file or .zip project) and `spec` as YAML or JSON text."""
    project = project_by_ref(request.auth, form.project)
    spec = _with_overrides(parse_spec_text(form.spec), form.gpus, _params_from_text(form.params))
    upload = None
    if code is not None:
        if (code.size or 0) > MAX_CODE_BYTES:
            raise ApiError(413, "too_large", f"code is {code.size:,} bytes; the limit is {MAX_CODE_BYTES:,}",
                           fields=[{"field": "code", "message": f"larger than {MAX_CODE_BYTES:,} bytes"}])
        upload = CodeUpload(filename=code.name or "main.py", data=code.read())
    return Status(201, _submitted_out(run_submit(user=request.auth, project=project, spec=spec, code=upload)))


@router.get("", response={200: RunPage, 400: ErrorOut, 404: ErrorOut})
def list_runs(request: ApiRequest, filters: Query[ListIn]) -> HttpResponse:
    """Runs matching a query, newest first unless sorted; see the query language in the description."""
    project = project_by_ref(request.auth, filters.project) if filters.project else None
    if project is not None and not filters.query.strip() and not filters.sort.strip():  # the common case
        body = project_run_page_body(project, offset=filters.offset, limit=filters.limit)
        return HttpResponse(body, content_type="application/json")
    condition = _parsed("query", parse_query, filters.query)
    order = _parsed("sort", parse_sort, filters.sort)
    runs = runs_for_listing(request.auth, project=project).filter(condition).order_by(*order)
    rows, count = run_page(runs, offset=filters.offset, limit=filters.limit)
    return fast_json({**page_fields(count, filters.limit, filters.offset), "items": [run_row_out(row) for row in rows]})


@router.get("/{run_id}", response={200: RunDetailOut, 404: ErrorOut})
def get_run(request: ApiRequest, run_id: Id) -> dict:
    return run_detail_out(run_detail_for(request.auth, run_id))


@router.post("/{run_id}/cancel", response={200: CancelOut, 403: ErrorOut, 404: ErrorOut})
def cancel_run(request: ApiRequest, run_id: Id) -> dict:
    """Cancel a run that has not finished; `cancelled` is false when it had already finished."""
    cancelled = run_cancel(user=request.auth, run=run_for(request.auth, run_id))
    return {"cancelled": cancelled, "run": run_detail_out(run_detail_for(request.auth, run_id))}


@router.post("/{run_id}/rerun", response={201: RunDetailOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def rerun(request: ApiRequest, run_id: Id) -> Status:
    """Queue a new run with the same spec and code."""
    again = run_resubmit(user=request.auth, run=run_for(request.auth, run_id))
    return Status(201, run_detail_out(run_detail_for(request.auth, again.id)))


@router.delete("/{run_id}", response={204: None, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def delete_run(request: ApiRequest, run_id: Id) -> Status:
    """Delete a finished run with its metrics, logs and artifacts (needs edit access)."""
    run_delete(user=request.auth, run=run_for(request.auth, run_id))
    return Status(204, None)


def _with_overrides(spec: dict[str, Any], gpus: int | None, params: dict[str, Any] | None) -> dict[str, Any]:
    spec = dict(spec)
    if gpus is not None:
        resources = spec.get("resources")
        spec["resources"] = {**resources, "gpus": gpus} if isinstance(resources, dict) else {"gpus": gpus}
    if params:
        current = spec.get("params")
        spec["params"] = {**current, **params} if isinstance(current, dict) else dict(params)
    return spec


def _params_from_text(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        params = json.loads(text)
    except ValueError:
        params = None
    if not isinstance(params, dict):
        raise SpecError([{"field": "params", "message": 'must be a JSON object such as {"lr": 0.01}'}])
    return params


def _parsed(field: str, parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except QueryError as exc:
        raise ApiError(400, "bad_query", f"{field}: {exc}", fields=[{"field": field, "message": str(exc)}]) from None


def _submitted_out(submitted: Submitted) -> dict:
    """The new runs read back in a fixed number of queries, however large the sweep."""
    runs = runs_detailed([run.id for run in submitted.runs])
    sweep = {"id": submitted.sweep.id, "name": submitted.sweep.name} if submitted.sweep else None
    return {"runs": [run_detail_out(run) for run in runs], "sweep": sweep}
