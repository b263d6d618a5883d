"""Reads for dashboards. Every entry point that takes a user goes through `require_access`."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import Http404

from webapp.dashboards.models import Dashboard
from webapp.dashboards.state import CompareState, StateError
from webapp.experiments.models import MetricSummary, Run, Sweep
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access

AnyUser = User | AnonymousUser


def project_for(user: AnyUser, project_id: int, needed: Access = Access.VIEW) -> Project:
    """The project if `user` may act on it at `needed`: Http404 if they cannot see it, 403 if they may not act."""
    project = Project.objects.select_related("owner_user", "team").filter(id=project_id).first()
    if project is None:
        raise Http404("No such project")
    require_access(user, project, needed)
    return project


def shared_project(user: AnyUser, token: str) -> Project:
    """The public project whose read-only link is `token`; Http404 for anything else."""
    project = Project.objects.select_related("owner_user", "team").filter(public_token=token).first() if token else None
    if project is None:
        raise Http404("No such project")
    require_access(user, project, Access.VIEW, link_token=token)
    return project


def sweep_for(project: Project, sweep_id: int) -> Sweep:
    sweep = Sweep.objects.filter(project=project, id=sweep_id).first()
    if sweep is None:
        raise Http404("No such sweep")
    return sweep


def compare_runs(project: Project, state: CompareState) -> list[Run]:
    """The runs a compare view shows, by number; a run id outside the project is a StateError."""
    runs = Run.objects.filter(project=project).select_related("sweep").order_by("number")
    if state.runs:
        found = list(runs.filter(id__in=state.runs))
        missing = sorted(set(state.runs) - {run.id for run in found})
        if missing:
            raise StateError(f"runs {', '.join(map(str, missing))} are not in this project")
        return found
    if state.sweep is not None:
        if not Sweep.objects.filter(project=project, id=state.sweep).exists():
            raise StateError(f"sweep {state.sweep} is not in this project")
        return list(runs.filter(sweep_id=state.sweep))
    return []


def metric_keys(runs: list[Run]) -> list[str]:
    """Every metric key any of the runs logged, sorted."""
    keys = MetricSummary.objects.filter(run__in=[run.id for run in runs]).values_list("key", flat=True)
    return sorted(set(keys))


def project_dashboards(project: Project) -> QuerySet[Dashboard]:
    return project.dashboards.select_related("owner")


def dashboard_for(project: Project, dashboard_id: int) -> Dashboard:
    dashboard = Dashboard.objects.filter(project=project, id=dashboard_id).select_related("owner").first()
    if dashboard is None:
        raise Http404("No such dashboard")
    return dashboard
