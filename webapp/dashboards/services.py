"""Writes for dashboards: save a compare view under a name, delete it."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from webapp.dashboards.models import Dashboard
from webapp.dashboards.selectors import compare_runs
from webapp.dashboards.state import CompareState
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access

MAX_NAME = 120


def dashboard_save(*, user: User, project: Project, name: str, state: CompareState) -> Dashboard:
    """Save `state` as the dashboard `name` in `project`; saving under an existing name replaces it.

    Needs edit access. Raises ValidationError for a bad name, StateError for runs outside the project.
    """
    require_access(user, project, Access.EDIT)
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise ValidationError({"name": f"Give the dashboard a name of 1-{MAX_NAME} characters."})
    if not state.runs and state.sweep is None:
        raise ValidationError({"state": "A dashboard needs runs or a sweep to compare."})
    compare_runs(project, state)
    dashboard, _ = Dashboard.objects.update_or_create(
        project=project, name=name, defaults={"state": state.as_json(), "owner": user}
    )
    return dashboard


def dashboard_delete(*, user: User, dashboard: Dashboard) -> None:
    require_access(user, dashboard.project, Access.EDIT)
    dashboard.delete()
