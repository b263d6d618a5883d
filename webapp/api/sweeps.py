"""/api/sweeps: list a project's sweeps, read one (trials, best run, best value), pause/resume/stop/max_runs."""

from __future__ import annotations

from typing import Any, Literal

from django.http import Http404
from ninja import Query, Router, Schema
from pydantic import Field

from webapp.api.auth import ApiRequest
from webapp.api.errors import ErrorOut
from webapp.api.schemas import BodyIn, Id, ProjectRef
from webapp.experiments.models import Sweep
from webapp.experiments.sweeps import sweep_control, sweep_summaries, sweep_summary
from webapp.projects.permissions import Access, require_access
from webapp.projects.selectors import project_by_ref

router = Router(tags=["sweeps"])


class SweepListIn(Schema):
    project: ProjectRef = Field(description="Project id or owner/slug")


class SweepControlIn(BodyIn):
    action: Literal["pause", "resume", "stop", "max_runs"]
    max_runs: int | None = Field(None, ge=1, description="With action max_runs: the new total of trials")


@router.get("", response={200: list[dict[str, Any]], 404: ErrorOut})
def list_sweeps(request: ApiRequest, filters: Query[SweepListIn]) -> list[dict[str, Any]]:
    """A project's sweeps, newest first: state, trials by state, best run and best value of the objective."""
    project = project_by_ref(request.auth, filters.project)
    return [summary.as_json() for summary in sweep_summaries(project)]


@router.get("/{sweep_id}", response={200: dict[str, Any], 404: ErrorOut})
def get_sweep(request: ApiRequest, sweep_id: Id) -> dict[str, Any]:
    return sweep_summary(_sweep_for(request, sweep_id)).as_json()


@router.post("/{sweep_id}/control", response={200: dict[str, Any], 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def control_sweep(request: ApiRequest, sweep_id: Id, payload: SweepControlIn) -> dict[str, Any]:
    """Pause (no new trials), resume, stop (no new trials, queued ones cancelled) or raise max_runs."""
    sweep = sweep_control(user=request.auth, sweep=_sweep_for(request, sweep_id), action=payload.action,
                          max_runs=payload.max_runs)
    return sweep_summary(sweep).as_json()


def _sweep_for(request: ApiRequest, sweep_id: int) -> Sweep:
    sweep = Sweep.objects.select_related("project").filter(id=sweep_id).first()
    if sweep is None:
        raise Http404("No such sweep")
    require_access(request.auth, sweep.project, Access.VIEW)
    return sweep
