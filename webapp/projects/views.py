"""Project pages: create, the run table, settings and sharing, and the public read-only link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.cluster.quotas import quota_panels
from webapp.experiments.models import RunState
from webapp.experiments.run_columns import STATS, columns_reset, columns_save, saved_columns
from webapp.experiments.run_table import COLUMNS, PAGE_SIZE, RunFilters, run_table_page
from webapp.projects.forms import DeleteForm, ProjectCreateForm, VisibilityForm
from webapp.projects.models import Project, Visibility
from webapp.projects.permissions import Access
from webapp.projects.selectors import project_by_link, project_for
from webapp.projects.services import (
    project_create,
    project_delete,
    project_rotate_link,
    project_set_visibility,
)


@login_required
def project_new(request: HttpRequest) -> HttpResponse:
    form = ProjectCreateForm(request.POST or None, user=request.user)  # type: ignore[arg-type]
    if request.method == "POST" and form.is_valid():
        try:
            project = project_create(user=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Created {project.name}. Submit its first run.")
            return redirect("project_detail", project_id=project.id)
    return render(request, "projects/new.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project, access = project_for(request.user, project_id)
    return _run_table(request, project, access, share_token=None)


@require_GET
def project_shared(request: HttpRequest, token: str) -> HttpResponse:
    """The read-only view a public link opens, to anyone holding it (signed in or not)."""
    project = project_by_link(request.user, token)
    return _run_table(request, project, Access.VIEW, share_token=token)


def _run_table(request: HttpRequest, project: Project, access: Access, share_token: str | None) -> HttpResponse:
    filters = RunFilters.from_query(request.GET)
    table = run_table_page(project, filters, None if share_token else saved_columns(request.user, project))
    context = {
        "project": project,
        "can_edit": access >= Access.EDIT and not share_token,
        "can_admin": access >= Access.ADMIN and not share_token,
        "share_token": share_token,
        "filters": filters,
        "table": table,
        "states": RunState.choices,
        "columns": list(COLUMNS),
        "column_stats": STATS,
        "page_size": PAGE_SIZE,
        "query": _query_without(request, "page"),
        "sort_query": _query_without(request, "page", "sort"),
        "quota_panels": quota_panels(request.user, project) if request.user.is_authenticated and not share_token else [],
    }
    return render(request, "projects/detail.html", context)


@login_required
@require_POST
def project_columns(request: HttpRequest, project_id: int) -> HttpResponse:
    """Remember the run-table columns the user picked for this project (or forget them: `reset`)."""
    project, _ = project_for(request.user, project_id)
    if "reset" in request.POST:
        columns_reset(user=request.user, project=project)
        messages.success(request, "The run table shows its default columns again.")
    else:
        try:
            columns_save(user=request.user, project=project, ids=request.POST.getlist("column"))
        except ValueError as exc:
            messages.error(request, f"The columns were not saved. {exc}")
        else:
            messages.success(request, "Columns saved for this project.")
    back = reverse("project_detail", args=[project.id])
    query = request.POST.get("query", "")
    return redirect(f"{back}?{QueryDict(query).urlencode()}" if query else back)


@login_required
def project_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(request.user, project_id, Access.ADMIN)
    form = VisibilityForm(
        request.POST or None, user=request.user, project=project,  # type: ignore[arg-type]
        initial={"visibility": project.visibility, "team": project.team_id},
    )
    if request.method == "POST" and form.is_valid():
        try:
            project_set_visibility(user=request.user, project=project, **form.cleaned_data)  # type: ignore[arg-type]
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _visibility_sentence(project))
            return redirect("project_settings", project_id=project.id)
    return _settings_page(request, project, form, DeleteForm(project=project))


def _visibility_sentence(project: Project) -> str:
    """What the new visibility means, said as a sentence ("Digits is now shared with the team Vision Lab.")."""
    if project.visibility == Visibility.PUBLIC:
        return f"{project.name} is now public: anyone with its read-only link can see it."
    if project.visibility == Visibility.TEAM:
        return f"{project.name} is now shared with the team {project.team.name}."  # type: ignore[union-attr]
    if project.team_owned:
        return f"{project.name} is now open to the members of {project.team.name} only."  # type: ignore[union-attr]
    return f"{project.name} is now private: only you can see it."


@login_required
@require_POST
def project_rotate(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(request.user, project_id, Access.ADMIN)
    try:
        project_rotate_link(user=request.user, project=project)  # type: ignore[arg-type]
    except ValidationError:
        messages.error(request, "Only a public project has a link to rotate.")
    else:
        messages.success(request, "New link made; the old one no longer works.")
    return redirect("project_settings", project_id=project.id)


@login_required
@require_POST
def project_revoke_link(request: HttpRequest, project_id: int) -> HttpResponse:
    """Turn the public link off; a project shared with a team stays shared with it."""
    project, _ = project_for(request.user, project_id, Access.ADMIN)
    keep_team = project.team_id is not None and not project.team_owned
    visibility = Visibility.TEAM if keep_team else Visibility.PRIVATE
    project_set_visibility(user=request.user, project=project, visibility=visibility)  # type: ignore[arg-type]
    messages.success(request, "The public link is revoked.")
    return redirect("project_settings", project_id=project.id)


@login_required
@require_POST
def project_delete_view(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(request.user, project_id, Access.ADMIN)
    form = DeleteForm(request.POST, project=project)
    if not form.is_valid():
        settings_form = VisibilityForm(
            user=request.user, project=project,  # type: ignore[arg-type]
            initial={"visibility": project.visibility, "team": project.team_id},
        )
        return _settings_page(request, project, settings_form, form, status=400)
    name = project.name
    project_delete(user=request.user, project=project)  # type: ignore[arg-type]
    messages.success(request, f"Deleted {name} and all of its runs.")
    return redirect("home")


def _settings_page(
    request: HttpRequest, project: Project, form: VisibilityForm, delete_form: DeleteForm, status: int | None = None
) -> HttpResponse:
    link = (
        request.build_absolute_uri(reverse("project_shared", args=[project.public_token]))
        if project.visibility == Visibility.PUBLIC and project.public_token
        else None
    )
    context = {"project": project, "form": form, "delete_form": delete_form, "public_link": link}
    if status is None:
        status = 400 if form.errors else 200
    return render(request, "projects/settings.html", context, status=status)


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()
