"""/api/projects: list what you can see, create, read, change visibility. A project is `{id}` or `{owner}/{slug}`."""

from __future__ import annotations

from typing import Literal

from ninja import Query, Router, Status
from pydantic import Field

from webapp.accounts.selectors import team_for_member
from webapp.api.auth import ApiRequest
from webapp.api.errors import ErrorOut
from webapp.api.schemas import BodyIn, PageIn, ProjectOut, ProjectPage, Text, page_fields, project_out
from webapp.projects.permissions import Access
from webapp.projects.selectors import project_by_ref, projects_visible_to
from webapp.projects.services import project_create, project_set_visibility

router = Router(tags=["projects"])
VisibilityName = Literal["private", "team", "public"]


class ProjectIn(BodyIn):
    name: Text = Field(min_length=1, max_length=120)
    description: Text = Field("", max_length=5000)
    team: Text | None = Field(None, max_length=60, description="Slug of the owning team; omit for a personal project")
    visibility: VisibilityName = "private"


class ProjectPatch(BodyIn):
    visibility: VisibilityName
    team: Text | None = Field(None, max_length=60, description="For a personal project: the team to share it with")


@router.get("", response=ProjectPage)
def list_projects(request: ApiRequest, page: Query[PageIn]) -> dict:
    """Projects you own or see through a team, by name."""
    projects = projects_visible_to(request.auth).order_by("name", "id")
    count = projects.count()
    items = [project_out(p) for p in projects[page.offset : page.offset + page.limit]]
    return {**page_fields(count, page.limit, page.offset), "items": items}


@router.post("", response={201: ProjectOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def create_project(request: ApiRequest, payload: ProjectIn) -> Status:
    """A personal project, or one owned by a team in which you are an editor or admin."""
    team = team_for_member(request.auth, payload.team)[0] if payload.team else None
    project = project_create(
        user=request.auth, name=payload.name, team=team, description=payload.description, visibility=payload.visibility
    )
    return Status(201, project_out(project))


@router.get("/{path:ref}", response={200: ProjectOut, 404: ErrorOut})
def get_project(request: ApiRequest, ref: str) -> dict:
    return project_out(project_by_ref(request.auth, ref))


@router.patch("/{path:ref}", response={200: ProjectOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def update_project(request: ApiRequest, ref: str, payload: ProjectPatch) -> dict:
    """Change who sees the project (project admins only)."""
    project = project_by_ref(request.auth, ref, Access.VIEW)
    team = team_for_member(request.auth, payload.team)[0] if payload.team else None
    return project_out(project_set_visibility(user=request.auth, project=project, visibility=payload.visibility, team=team))
