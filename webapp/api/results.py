"""/api/runs/{id}/...: what a run reports: metrics (batch log, summaries, history), logs, artifacts."""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from django.http import FileResponse
from ninja import File, Form, Query, Router, Schema, Status, UploadedFile
from ninja.decorators import decorate_view
from pydantic import Field

from webapp.api import metric_body
from webapp.api.auth import ApiRequest
from webapp.api.errors import ApiError, ErrorOut
from webapp.api.parser import fast_json_content
from webapp.api.schemas import ArtifactOut, BodyIn, Id, SummaryOut, Text, artifact_out, summary_out
from webapp.dashboards.series import EMPTY, SERIES_BUDGET, overviews, read_points, series_refs
from webapp.experiments.downloads import stored_file_response
from webapp.experiments.job_progress import job_progress_checked, job_progress_set
from webapp.experiments.nonfinite import NonFinite, json_value
from webapp.experiments.results import artifact_store, metrics_log_series
from webapp.experiments.selectors import (
    artifact_for,
    log_tail,
    metric_summaries,
    run_artifacts,
    run_for,
    run_id_for,
)
from webapp.projects.permissions import Access
from webapp.uploads import upload_limit

router = Router(tags=["results"])
MAX_ARTIFACT_BYTES = 1024**3  # one uploaded artifact
MAX_FULL_RESOLUTION = 100_000  # points a step range returns before it too is downsampled
STEP = Field(ge=-(2**62), le=2**62)
STEP_OR_NONE = Field(None, ge=-(2**62), le=2**62)


class MetricsLoggedOut(Schema):
    received: int
    stored: int = Field(description="Points not stored before; a resent (run, key, step) is ignored")


class MetricKeyOut(SummaryOut):
    key: str


class HistoryIn(Schema):
    key: Text = Field(min_length=1, max_length=200)
    max_points: int = Field(1000, ge=4, le=SERIES_BUDGET, description="Whole series are min/max-downsampled to this")
    step_min: int | None = Field(None, ge=-(2**62), le=2**62, description="Either bound: that range at full resolution")
    step_max: int | None = STEP_OR_NONE


class HistoryOut(Schema):
    key: str
    total: int = Field(description="Points stored in the requested range")
    downsampled: bool
    steps: list[int] = Field(description="One per point; for a system metric (sys/...) the sample's number in the run")
    values: list[float | NonFinite] = Field(description='Numbers, or "NaN", "Infinity", "-Infinity"')
    wall_times: list[float] = Field(description="Seconds since the epoch, one per point: a system metric's x axis")


class LogsIn(Schema):
    offset: int = Field(0, ge=0, le=2**62, description="The first seq to return: the last seq seen + 1")
    limit: int = Field(1000, ge=1, le=10_000)


class LogLineOut(Schema):
    seq: int
    stream: str
    text: str


class LogsOut(Schema):
    lines: list[LogLineOut]
    next_offset: int
    state: str
    finished: bool


@router.post("/{run_id}/metrics", response={200: MetricsLoggedOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut, 415: ErrorOut,
                                             422: ErrorOut}, openapi_extra=metric_body.OPENAPI)
def log_metrics(request: ApiRequest, run_id: Id) -> dict:
    """Log a batch of points; all or nothing, idempotent per (key, step).

    The body is rows (`{"points": [{"key", "step", "value", "wall_time"?}]}`) or columns, which are
    smaller and cheaper (`{"key", "steps", "values", "wall_times"?}`, or `{"series": [...]}` of them);
    `Content-Encoding: gzip` is honoured. A value may be NaN or ±inf (JSON NaN/Infinity/-Infinity,
    1e999, or the strings "NaN", "Infinity", "-Infinity"); reads give them back as those strings.
    """
    # NOTE: the body is read here, not by ninja: one parse into columns, no object per point (metric_body).
    received, columns = metric_body.metric_columns(fast_json_content(request))
    run = run_id_for(request.auth, run_id, Access.EDIT)
    return {"received": received, "stored": metrics_log_series(run_id=run, series=columns)}


class ProgressIn(BodyIn):
    # NOTE: typed Any: the counts are checked by the one progress rule (job_progress_checked), as the worker checks them.
    step: Any = Field(None, description="Optimizer steps done (an int, with total)")
    total: Any = Field(None, description="Optimizer steps in all (an int >= 1, >= step)")
    epoch: Any = Field(None, description="Epochs done (an int, with epochs)")
    epochs: Any = Field(None, description="Epochs in all (an int >= 1, >= epoch)")
    eta_seconds: Any = Field(None, description="Seconds left as the job estimates them; null when it has no rate yet")
    time: Any = Field(None, description="When the job reported, seconds since the epoch")


class ProgressOut(Schema):
    step: int | None = None
    total: int | None = None
    epoch: int | None = None
    epochs: int | None = None
    eta_seconds: float | None
    at: float


@router.post("/{run_id}/progress", response={200: ProgressOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def report_progress(request: ApiRequest, run_id: Id, body: ProgressIn) -> dict:
    """Set the run's progress (what the run page's bar shows), as a job inside Kiln reports it; the last report wins."""
    run = run_id_for(request.auth, run_id, Access.EDIT)
    try:
        progress = job_progress_checked(body.model_dump())
    except (TypeError, ValueError) as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    job_progress_set(run_id=run, progress=progress)
    return progress


@router.get("/{run_id}/metrics", response={200: list[MetricKeyOut], 404: ErrorOut})
def list_metrics(request: ApiRequest, run_id: Id) -> list:
    """Every metric key of the run with its summary (last, min, max, count)."""
    return [{"key": s.key, **summary_out(s)} for s in metric_summaries(run_for(request.auth, run_id))]


@router.get("/{run_id}/metrics/history", response={200: HistoryOut, 404: ErrorOut})
def metric_history(request: ApiRequest, run_id: Id, params: Query[HistoryIn]) -> dict:
    """One key's points by step: the whole series downsampled (min/max buckets keep spikes), or a step range at full resolution.

    System metrics (keys under `sys/`: `sys/cpu_percent`, `sys/memory_mb`, `sys/processes`,
    `sys/gpu<N>/util_percent`, ...; `sys/node<k>/...` for node k > 0 of a multi-node run) are series
    over wall time: `steps` numbers their samples 0, 1, 2, ... across the run's attempts and
    `wall_times` says when each was taken (chart them against it). Their summaries' `last_step` is
    the last sample's number.
    """
    run = run_for(request.auth, run_id)
    if params.step_min is None and params.step_max is None:
        series = overviews(series_refs([run.id], [params.key]), params.max_points).get((run.id, params.key), EMPTY)
    else:
        series = read_points(run.id, params.key, lo=params.step_min, hi=params.step_max)
        if series.raw_count > MAX_FULL_RESOLUTION:
            series = series.take(params.max_points)
    return {
        "key": params.key, "total": series.raw_count, "downsampled": series.sampled,
        "steps": series.steps.tolist(), "values": [json_value(v) for v in series.values.tolist()],
        "wall_times": series.walls.tolist(),
    }


@router.get("/{run_id}/logs", response={200: LogsOut, 404: ErrorOut})
def logs(request: ApiRequest, run_id: Id, params: Query[LogsIn]) -> dict:
    """Log lines from `offset` on, oldest first; poll with next_offset until `finished`."""
    run = run_for(request.auth, run_id)
    lines = log_tail(run, offset=params.offset, limit=params.limit)
    next_offset = lines[-1]["seq"] + 1 if lines else params.offset
    return {"lines": lines, "next_offset": next_offset, "state": run.state, "finished": run.is_final}


@router.get("/{run_id}/artifacts", response={200: list[ArtifactOut], 404: ErrorOut})
def list_artifacts(request: ApiRequest, run_id: Id) -> list:
    return [artifact_out(a) for a in run_artifacts(run_for(request.auth, run_id))]


class ModelFileOut(Schema):
    format: str = Field(description='"engine" (engine.jit file) or "onnx"')
    artifact_id: int
    name: str
    size: int
    sha256: str
    download_url: str


class ModelOut(Schema):
    name: str
    signature: dict[str, Any] = Field(description='{"inputs", "outputs"}: [{"name", "dtype", "shape"}], "batch" for the dynamic dim')
    files: list[ModelFileOut]


@router.get("/{run_id}/models", response={200: list[ModelOut], 404: ErrorOut})
def list_models(request: ApiRequest, run_id: Id) -> list:
    """The models the run logged (engine.track.log_model), each with its signature and one file per format."""
    run = run_for(request.auth, run_id)
    found: dict[str, dict[str, Any]] = {}
    for artifact in run_artifacts(run):
        if artifact.kind != "model":
            continue
        meta = artifact.metadata or {}
        model = found.setdefault(str(meta.get("model", artifact.name)),
                                 {"name": str(meta.get("model", artifact.name)), "signature": meta.get("signature") or {},
                                  "files": []})
        model["files"].append({
            "format": str(meta.get("format", "")), "artifact_id": artifact.id, "name": artifact.name,
            "size": artifact.size, "sha256": artifact.sha256,
            "download_url": f"/api/runs/{run.id}/artifacts/{artifact.id}/download",
        })
    return list(found.values())


class ArtifactIn(Schema):
    name: Text = Field("", max_length=255, description="Relative path under the run; the file's name when empty")
    kind: Literal["artifact", "checkpoint"] = "artifact"
    step: int | None = STEP_OR_NONE


@router.post("/{run_id}/artifacts", response={201: ArtifactOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut, 422: ErrorOut})
@decorate_view(upload_limit(MAX_ARTIFACT_BYTES))
def upload_artifact(request: ApiRequest, run_id: Id, form: Form[ArtifactIn], file: File[UploadedFile]) -> Status:
    """Attach a file to the run (multipart); the same name replaces the old file."""
    run = run_for(request.auth, run_id, Access.EDIT)
    if (file.size or 0) > MAX_ARTIFACT_BYTES:
        raise ApiError(413, "too_large", f"The file is {file.size:,} bytes; the limit is {MAX_ARTIFACT_BYTES:,}",
                       fields=[{"field": "file", "message": f"larger than {MAX_ARTIFACT_BYTES:,} bytes"}])
    name = form.name or posixpath.basename(file.name or "")
    return Status(201, artifact_out(artifact_store(run_id=run.id, name=name, kind=form.kind, file=file, step=form.step)))


@router.get("/{run_id}/artifacts/{artifact_id}/download", response={200: None, 404: ErrorOut})
def download_artifact(request: ApiRequest, run_id: Id, artifact_id: Id) -> FileResponse:
    """The file itself, streamed from storage."""
    artifact = artifact_for(run_for(request.auth, run_id), artifact_id)
    try:
        response = stored_file_response(
            artifact.storage_path, posixpath.basename(artifact.name), content_type="application/octet-stream"
        )
    except FileNotFoundError:
        raise ApiError(404, "not_found", "The artifact's file is missing from storage") from None
    response["X-Checksum-Sha256"] = artifact.sha256
    return response
