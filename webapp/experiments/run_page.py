"""Everything the run page shows, read in a fixed number of queries."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import yaml
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from webapp.experiments.gang import gang_view
from webapp.experiments.live import log_lines, metric_series, run_status
from webapp.experiments.models import Run
from webapp.projects.permissions import Access

MAX_CODE_VIEW_BYTES = 512 * 1024


def run_page_context(run: Run, *, access: Access, share_token: str | None) -> dict[str, Any]:
    artifacts = list(run.artifacts.order_by("kind", "step", "name"))
    status = run_status(run, with_events=True)
    return {
        "run": run,
        "project": run.project,
        "share_token": share_token,
        "can_edit": access >= Access.EDIT and share_token is None,
        "events": status["events"],
        # key=value tags (MLflow's) show both; MLflow's own bookkeeping tags (mlflow.*) stay in the API
        "tags": sorted(f"{name}={value}" if value else name for name, value in run.tags.values_list("name", "value")
                       if not name.startswith("mlflow.")),
        "artifacts": [a for a in artifacts if a.kind == "artifact"],
        "checkpoints": [a for a in artifacts if a.kind == "checkpoint"],
        "models": _models([a for a in artifacts if a.kind == "model"]),
        "gang": gang_view(run),
        "spec_yaml": yaml.safe_dump(run.spec, sort_keys=False, allow_unicode=True),
        "spec_json": json.dumps(run.spec, indent=2, sort_keys=True),
        "params": sorted(run.params.items()),
        "code": _code_view(run),
        "duration": _duration(run),
        "live": {
            "run_id": run.id,  # the run's chart colour (KilnDash.runColor), the same on every page
            "status": status,
            "series": metric_series(run),
            "logs": log_lines(run),
            "artifacts": artifact_rows(run, share_token, artifacts),
            "metrics_url": _url("run_metrics_json", run, share_token),
            "logs_url": _url("run_logs_json", run, share_token),
            "interval_ms": 2000,
        },
    }


def artifact_rows(run: Run, share_token: str | None, artifacts: list[Any] | None = None) -> list[dict[str, Any]]:
    """The artifacts-and-checkpoints table as data (checkpoints first), for the live feed to redraw it."""
    if artifacts is None:
        artifacts = list(run.artifacts.order_by("kind", "step", "name"))
    shown = [a for a in artifacts if a.kind == "checkpoint"] + [a for a in artifacts if a.kind == "artifact"]
    return [
        {"id": a.id, "name": a.name, "kind": a.get_kind_display(), "step": a.step, "size": a.size, "sha256": a.sha256,
         "url": _url("run_artifact", run, share_token, a.id)}
        for a in shown
    ]


def _models(files: list[Any]) -> list[dict[str, Any]]:
    """Model artifacts grouped by model: {"name", "inputs", "outputs", "files"}; shapes as "batch, 16"."""
    found: dict[str, dict[str, Any]] = {}
    for artifact in files:
        meta = artifact.metadata or {}
        signature = meta.get("signature") or {}
        model = found.setdefault(str(meta.get("model", artifact.name)), {
            "name": str(meta.get("model", artifact.name)), "files": [],
            **{side: [_io_line(spec) for spec in signature.get(side, [])] for side in ("inputs", "outputs")},
        })
        model["files"].append({"format": "ONNX" if meta.get("format") == "onnx" else "engine.jit", "artifact": artifact})
    return list(found.values())


def _io_line(spec: Any) -> str:
    if not isinstance(spec, dict):
        return "?"
    shape = ", ".join(str(d) for d in spec.get("shape", []))
    return f"{spec.get('name', '?')}: {spec.get('dtype', '?')}[{shape}]"


def _url(name: str, run: Run, share_token: str | None, *args: Any) -> str:
    if share_token:
        return reverse(f"shared_{name}", args=[share_token, run.id, *args])
    return reverse(name, args=[run.id, *args])


def _code_view(run: Run) -> dict[str, Any] | None:
    """A .py file's text, or a zip's file list; None for recipe runs or code missing from storage."""
    if not run.code_path or not default_storage.exists(run.code_path):
        return None
    if run.code_path.endswith(".py"):
        with default_storage.open(run.code_path, "rb") as handle:
            data = handle.read(MAX_CODE_VIEW_BYTES + 1)
        return {"kind": "py", "text": data[:MAX_CODE_VIEW_BYTES].decode("utf-8", errors="replace"),
                "truncated": len(data) > MAX_CODE_VIEW_BYTES}
    with default_storage.open(run.code_path, "rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        files = [{"name": m.filename, "size": m.file_size} for m in archive.infolist() if not m.is_dir()]
    return {"kind": "zip", "files": files}


def _duration(run: Run) -> float | None:
    if run.started_at is None:
        return None
    end = run.finished_at or timezone.now()
    return (end - run.started_at).total_seconds()
