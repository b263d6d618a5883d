"""Kiln's rows as MLflow's entities: a project is an experiment, a run is a run (ids are Kiln's ids as text)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import OuterRef, Subquery
from django.utils.text import slugify

from webapp.accounts.models import Team
from webapp.experiments.external import param_text
from webapp.experiments.models import Metric, MetricSummary, Run, RunState
from webapp.ids import parse_id
from webapp.mlflow.errors import MlflowError
from webapp.mlflow.experiment_tags import NOTE_TAG, experiment_tags
from webapp.mlflow.models import LoggedModel
from webapp.projects.models import Project
from webapp.projects.permissions import Access
from webapp.projects.selectors import project_for
from webapp.projects.services import project_create

DEFAULT_EXPERIMENT_ID = "0"  # MLflow's "Default" experiment: the caller's own project "default"
DEFAULT_SLUG = "default"
RUN_NAME_TAG = "mlflow.runName"

STATUS_TO_STATE = {"RUNNING": RunState.RUNNING, "FINISHED": RunState.SUCCEEDED, "FAILED": RunState.FAILED,
                   "KILLED": RunState.CANCELLED}
STATE_TO_STATUS = {RunState.QUEUED: "SCHEDULED", RunState.SCHEDULED: "SCHEDULED", RunState.LOST: "SCHEDULED",
                   RunState.RUNNING: "RUNNING", RunState.SUCCEEDED: "FINISHED", RunState.FAILED: "FAILED",
                   RunState.CANCELLED: "KILLED", RunState.STOPPED_EARLY: "FINISHED",  # pruned: ended as intended
                   RunState.PAUSED: "SCHEDULED"}  # paused at a rung: waits to be promoted (MLflow has no pause)


def lifecycle_stage(row: Run | Project) -> str:
    """MLflow's lifecycle_stage of a run or an experiment: "deleted" while soft-deleted (`deleted_at`)."""
    return "active" if row.deleted_at is None else "deleted"


def millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def from_millis(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    number = parse_int_field(value, field)
    try:
        return datetime.fromtimestamp(number / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"{field} must be milliseconds since the epoch, got {value!r}") from None


def parse_int_field(value: Any, field: str) -> int:
    """An int64 the client sent as a number or as text (proto3 JSON writes int64 either way)."""
    if isinstance(value, bool) or not isinstance(value, int | str) or (number := _int(value)) is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"{field} must be a 64-bit integer, got {value!r}")
    return number


def _int(value: int | str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if -(2**63) <= number < 2**63 else None


def parse_double(value: Any, field: str) -> float:
    """A double as number or as proto3 JSON's "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, bool):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"{field} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise MlflowError("INVALID_PARAMETER_VALUE", f"{field} must be a number, got {value!r}")


def double_out(value: float | None) -> float | str:
    """A stored value as proto3 JSON: NULL stands for NaN (`nonfinite`), ±inf as text."""
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


# -- experiments ----------------------------------------------------------------------------------------------


def experiment_for(user: User, experiment_id: Any, needed: Access = Access.VIEW, *, deleted_ok: bool = False) -> Project:
    """The project behind an experiment id; "0" is the caller's own "default" (made when first written to).

    A deleted experiment is read (`needed` VIEW) as MLflow reads it; a write to it is refused with
    MLflow's "must be in the 'active' state" unless `deleted_ok` (delete and restore).
    """
    text = str(experiment_id if experiment_id is not None else "").strip()
    if text == DEFAULT_EXPERIMENT_ID:
        project = (Project.all_objects.filter(owner_user=user, slug=DEFAULT_SLUG).select_related("owner_user", "team")
                   .first())
        if project is None:
            if needed <= Access.VIEW:
                raise MlflowError("RESOURCE_DOES_NOT_EXIST", "No experiment with id=0 (your default project) yet")
            project = project_create(user=user, name="Default")
    else:
        project_id = parse_id(text)
        if project_id is None:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST" if text else "INVALID_PARAMETER_VALUE",
                              f"No experiment with id={text!r}" if text else "experiment_id is required")
        project = project_for(user, project_id, needed, with_deleted=True)[0]
    if project.deleted_at is not None and needed > Access.VIEW and not deleted_ok:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"The experiment {project.id} must be in the 'active' state. "
                          "Current state is deleted.")
    return project


def split_name(user: User, name: str) -> tuple[str, str]:
    """(owner, slug) of an experiment name: "owner/name", or "name" for the caller's own."""
    name = name.strip()
    if not name or len(name) > 500 or "\0" in name:
        raise MlflowError("INVALID_PARAMETER_VALUE", "An experiment name has 1-500 characters")
    owner, _, rest = name.rpartition("/")
    if "/" in owner:
        raise MlflowError("INVALID_PARAMETER_VALUE",
                          f"Experiment {name!r}: name a Kiln project as 'name' (yours) or 'owner/name'")
    slug = slugify(rest)[:80]
    if not slug:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Experiment {name!r}: give it a name with letters or digits")
    return owner or user.username, slug


def experiment_by_name(user: User, name: str) -> Project | None:
    """The project an experiment name means, if the caller may see it (deleted or not, as MLflow's get-by-name)."""
    from webapp.projects.permissions import project_access

    owner, slug = split_name(user, name)
    candidates = Project.all_objects.select_related("owner_user", "team").filter(slug=slug)  # a deleted one too
    candidates = candidates.filter(owner_user__username=owner) | candidates.filter(owner_user__isnull=True, team__slug=owner)
    for project in candidates[:2]:
        if project_access(user, project) >= Access.VIEW:
            return project
    return None


def experiment_create(user: User, name: str) -> Project:
    """A new project for an experiment name: the caller's own, or a team's the caller edits."""
    owner, _ = split_name(user, name)
    existing = experiment_by_name(user, name)
    if existing is not None and existing.deleted_at is not None:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists in deleted state. You can "
                          "restore the experiment, or wait until Kiln purges it (KILN_DELETED_RETENTION_DAYS after "
                          "its deletion) to use this name again.")
    if existing is not None:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.")
    title = name.strip().rpartition("/")[2].strip()
    if owner == user.username:
        return project_create(user=user, name=title)
    team = Team.objects.filter(slug=owner).first()
    if team is None:
        raise MlflowError("PERMISSION_DENIED", f"You may create experiments under your own name or a team's, not {owner!r}")
    return project_create(user=user, name=title, team=team)


def experiment_name(user: User, project: Project) -> str:
    return project.name if project.owner_user_id == user.id else f"{project.owner_label}/{project.name}"


def experiment_out(user: User, project: Project, *, name: str | None = None) -> dict[str, Any]:
    created = millis(project.created_at)
    out: dict[str, Any] = {
        "experiment_id": str(project.id), "name": name or experiment_name(user, project),
        "artifact_location": f"mlflow-artifacts:/{project.id}", "lifecycle_stage": lifecycle_stage(project),
        "creation_time": created, "last_update_time": created, "tags": experiment_tags(project),
    }
    return out


# -- runs -----------------------------------------------------------------------------------------------------


def artifact_uri(run: Run) -> str:
    return f"mlflow-artifacts:/{run.project_id}/{run.id}/artifacts"


def runs_out(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """Runs as MLflow's Run (info, data, inputs), their latest metrics read in one query for all of them."""
    runs = list(runs)
    latest: dict[int, list[dict[str, Any]]] = {run.id: [] for run in runs}
    wall = Metric.objects.filter(run_id=OuterRef("run_id"), key=OuterRef("key"), step=OuterRef("last_step"))
    summaries = (MetricSummary.objects.filter(run_id__in=latest).annotate(wall=Subquery(wall.values("wall_time")[:1]))
                 .order_by("run_id", "key").values_list("run_id", "key", "last", "last_step", "wall"))
    for run_id, key, last, step, wall_time in summaries:
        latest[run_id].append({"key": key, "value": double_out(last), "timestamp": int((wall_time or 0) * 1000),
                               "step": step})
    outputs: dict[int, list[dict[str, Any]]] = {run.id: [] for run in runs}
    for run_id, model_id, step in LoggedModel.objects.filter(run_id__in=outputs).order_by("created_at", "id").values_list(
            "run_id", "model_id", "step"):
        outputs[run_id].append({"model_id": model_id, "step": step})
    return [_run_out(run, latest[run.id], outputs[run.id]) for run in runs]


def _run_out(run: Run, metrics: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": str(run.id), "run_uuid": str(run.id), "run_name": run.name, "experiment_id": str(run.project_id),
        "user_id": run.owner.username, "status": STATE_TO_STATUS[RunState(run.state)],
        "start_time": millis(run.started_at or run.created_at), "artifact_uri": artifact_uri(run),
        "lifecycle_stage": lifecycle_stage(run),
    }
    if run.finished_at is not None:
        info["end_time"] = millis(run.finished_at)
    tags = [{"key": tag.name, "value": tag.value} for tag in run.tags.all()]
    tags.append({"key": RUN_NAME_TAG, "value": run.name})
    if run.notes:
        tags.append({"key": NOTE_TAG, "value": run.notes})
    params = [{"key": key, "value": param_text(value)} for key, value in sorted((run.params or {}).items())]
    external = run.spec.get("external") if isinstance(run.spec, dict) else None
    inputs = (external or {}).get("inputs") or [] if isinstance(external, dict) else []
    return {"info": info, "data": {"metrics": metrics, "params": params, "tags": tags},
            "inputs": {"dataset_inputs": inputs}, "outputs": {"model_outputs": outputs}}
