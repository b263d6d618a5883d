"""Shapes the API reads and writes, and the small functions that turn models into them."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import orjson
from django.http import HttpResponse
from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from webapp.experiments.models import Artifact, MetricSummary, Run, RunNode
from webapp.experiments.nonfinite import NonFinite, json_value
from webapp.experiments.selectors import RUN_ROW_JSON_FIELDS, RUN_ROW_TIME_FIELDS
from webapp.ids import MAX_ID, parse_id
from webapp.projects.models import Project
from webapp.text_input import nul_free

MAX_PAGE = 200


def _id_as_text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Text = Annotated[str, AfterValidator(nul_free)]
ProjectRef = Annotated[
    str, BeforeValidator(_id_as_text), AfterValidator(nul_free),
    Field(min_length=1, max_length=200, description="A project's id or its owner/slug path"),
]


def _id_from_text(value: object) -> object:
    """Ids in paths and queries go through the one id parser: ASCII digits, within the bigint."""
    if isinstance(value, str):
        parsed = parse_id(value)
        if parsed is None:
            raise ValueError(f"must be an id: a whole number from 1 to {MAX_ID} in ASCII digits")
        return parsed
    return value


Id = Annotated[int, BeforeValidator(_id_from_text), Field(ge=1, le=MAX_ID)]


class BodyIn(Schema):
    """Base of every JSON request body: an unknown field is refused (422 naming it), as specs do."""

    model_config = ConfigDict(extra="forbid")


def finite(value: float | None) -> float | None:
    """A summary's min/max: finite, or null (see `webapp.experiments.nonfinite`, the rule for NaN and ±inf)."""
    return value if value is not None and math.isfinite(value) else None


class PageIn(Schema):
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=10**9)


class PageOut(Schema):
    count: int
    limit: int
    offset: int
    next_offset: int | None


def page_fields(count: int, limit: int, offset: int) -> dict[str, Any]:
    return {"count": count, "limit": limit, "offset": offset, "next_offset": offset + limit if offset + limit < count else None}


# Projects -------------------------------------------------------------------------------------------

class ProjectOut(Schema):
    id: int
    path: str = Field(description="owner/slug: the project's address in the API, the client and the CLI")
    slug: str
    name: str
    description: str
    owner: str
    team: str | None
    team_owned: bool
    visibility: str
    created_at: datetime


class ProjectPage(PageOut):
    items: list[ProjectOut]


def project_out(project: Project) -> dict[str, Any]:
    return {
        "id": project.id, "path": f"{project.owner_label}/{project.slug}", "slug": project.slug,
        "name": project.name, "description": project.description, "owner": project.owner_label,
        "team": project.team.slug if project.team_id else None,  # type: ignore[union-attr]
        "team_owned": project.team_owned, "visibility": project.visibility, "created_at": project.created_at,
    }


# Runs -----------------------------------------------------------------------------------------------

class SummaryOut(Schema):
    last: float | NonFinite = Field(description='The last value: a number, or "NaN", "Infinity", "-Infinity"')
    last_step: int
    min: float | None
    max: float | None
    count: int


class RunOut(Schema):
    id: int
    project_id: int
    project: str
    number: int
    name: str
    kind: str
    state: str
    owner: str
    params: dict[str, Any]
    tags: list[str]
    metrics: dict[str, SummaryOut]
    gpus: int
    priority: int
    attempt: int
    pending_reason: str
    failure_reason: str
    exit_code: int | None
    progress: dict[str, Any]
    sweep_id: int | None
    cloned_from_id: int | None
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class NodeOut(Schema):
    node_rank: int
    worker: str
    gpu_indices: list[int]
    state: str
    reason: str


class RunDetailOut(RunOut):
    spec: dict[str, Any]
    notes: str
    entrypoint: str
    code_sha256: str
    max_minutes: int
    memory_gb: float = Field(description="Host memory the run may use, in GB (resources.memory_gb, else the server's default)")
    max_attempts: int
    worker: str | None
    gpu_indices: list[int]
    nodes: int = Field(1, description="Workers the run spans (resources.nodes)")
    processes_per_node: int = Field(1, description="Ranks on each node (distributed.processes_per_node)")
    gang: list[NodeOut] = Field(default_factory=list,
                                description="A multi-node run's nodes in its current attempt: worker, GPUs, state")
    metrics_compacted_at: datetime | None = Field(
        None, description="When `kiln compact-metrics` deleted its raw points that charts do not draw (none: never)")


class RunPage(PageOut):
    items: list[RunOut]


class SweepOut(Schema):
    id: int
    name: str


class SubmittedOut(Schema):
    runs: list[RunDetailOut]
    sweep: SweepOut | None


def summary_out(summary: MetricSummary) -> dict[str, Any]:
    return {
        "last": json_value(summary.last), "last_step": summary.last_step, "min": finite(summary.min),
        "max": finite(summary.max), "count": summary.count,
    }


def run_out(run: Run) -> dict[str, Any]:
    """Needs run.project (with its owner and team), run.owner, and prefetched tags and summaries."""
    project = run.project
    return {
        "id": run.id, "project_id": run.project_id, "project": f"{project.owner_label}/{project.slug}",
        "number": run.number, "name": run.name, "kind": run.kind, "state": run.state,
        "owner": run.owner.username, "params": run.params, "tags": sorted(tag.name for tag in run.tags.all()),
        "metrics": {s.key: summary_out(s) for s in run.summaries.all()},
        "gpus": run.gpus, "priority": run.priority, "attempt": run.attempt,
        "pending_reason": run.pending_reason, "failure_reason": run.failure_reason, "exit_code": run.exit_code,
        "progress": run.progress or {}, "sweep_id": run.sweep_id, "cloned_from_id": run.cloned_from_id,
        "created_at": run.created_at, "scheduled_at": run.scheduled_at, "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def run_row_out(row: dict[str, Any]) -> dict[str, Any]:
    """A RunOut from a `run_page` row (the list's fast path), for `fast_json` only.

    The row's JSON text (params, progress, tags, metrics) goes into the response as it is, and
    datetimes are written the way ninja's encoder writes them, so a run reads the same here as
    in the detail view.
    """
    out = dict(row)
    for name in RUN_ROW_JSON_FIELDS:
        out[name] = orjson.Fragment(row[name])
    for name in RUN_ROW_TIME_FIELDS:
        if row[name] is not None:
            out[name] = _iso(row[name])
    return out


def _iso(value: datetime) -> str:
    """DjangoJSONEncoder's datetime: milliseconds, and Z for UTC."""
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def fast_json(data: Any) -> HttpResponse:
    """Render `data` with orjson, without ninja's per-object output validation: most of a list request's time.

    The shapes are still declared to OpenAPI by the handler's `response=`; tests check them against it.
    Datetimes, decimals and the like must already be text (see `run_row_out`); NaN and infinities become null.
    """
    return HttpResponse(orjson.dumps(data), content_type="application/json")


def run_detail_out(run: Run) -> dict[str, Any]:
    return {
        **run_out(run), "spec": run.spec, "notes": run.notes, "entrypoint": run.entrypoint,
        "code_sha256": run.code_sha256, "max_minutes": run.max_minutes, "memory_gb": run.memory_limit_gb,
        "max_attempts": run.max_attempts,
        "worker": run.worker.name if run.worker_id else None,  # type: ignore[union-attr]
        "gpu_indices": list(run.gpu_indices or []),
        "nodes": run.nodes, "processes_per_node": run.processes_per_node,
        "metrics_compacted_at": run.metrics_compacted_at,
        "gang": [] if run.nodes == 1 else [
            {"node_rank": rank, "worker": worker, "gpu_indices": gpus, "state": state, "reason": reason}
            for rank, worker, gpus, state, reason in RunNode.objects.filter(run_id=run.id, attempt=run.attempt)
            .values_list("node_rank", "worker_name", "gpu_indices", "state", "reason")
        ],
    }


# Results --------------------------------------------------------------------------------------------

class ArtifactOut(Schema):
    id: int
    name: str
    kind: str
    step: int | None
    size: int
    sha256: str
    created_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict, description='A model\'s {"model", "format", "signature"}')


def artifact_out(artifact: Artifact) -> dict[str, Any]:
    return {
        "id": artifact.id, "name": artifact.name, "kind": artifact.kind, "step": artifact.step,
        "size": artifact.size, "sha256": artifact.sha256, "created_at": artifact.created_at,
        "metadata": artifact.metadata or {},
    }
