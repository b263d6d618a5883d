"""Writes for projects: create, change sharing, rotate or revoke the public link, delete."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from webapp.accounts.models import Role, Team
from webapp.accounts.teams import team_role
from webapp.projects.models import Project, Visibility
from webapp.projects.permissions import Access, require_access


def project_create(
    *, user: User, name: str, team: Team | None = None, description: str = "",
    visibility: str = Visibility.PRIVATE,
) -> Project:
    """A project owned by `user`, or by `team` (which needs the user to be a team editor or admin)."""
    slug = slugify(name.strip())[:80]
    if not slug:
        raise ValidationError({"name": "Give the project a name with letters or digits."})
    if visibility not in Visibility.values:
        raise ValidationError({"visibility": f"Visibility must be one of {', '.join(Visibility.values)}."})
    if team is not None and team_role(user, team) not in (Role.EDITOR, Role.ADMIN):
        raise PermissionDenied("Only a team's editors and admins create its projects")
    try:
        with transaction.atomic():
            project = Project.objects.create(
                slug=slug, name=name.strip()[:120], description=description[:5000],
                owner_user=None if team else user, team=team, visibility=Visibility.PRIVATE,
            )
    except IntegrityError:
        raise ValidationError({"name": f"There is already a project called {slug!r} here."}) from None
    if visibility != Visibility.PRIVATE:
        project_set_visibility(user=user, project=project, visibility=visibility, team=team)
    return project


def project_set_visibility(
    *, user: User, project: Project, visibility: str, team: Team | None = None
) -> Project:
    """Change who sees the project. Going public creates an unguessable read-only link."""
    require_access(user, project, Access.ADMIN)
    if visibility not in Visibility.values:
        raise ValidationError({"visibility": f"Visibility must be one of {', '.join(Visibility.values)}."})
    if not project.team_owned:
        if visibility == Visibility.TEAM and team is None and project.team is None:
            raise ValidationError({"team": "Choose the team to share this project with."})
        if team is not None:
            if team_role(user, team) is None:
                raise ValidationError({"team": "You can only share with a team you belong to."})
            project.team = team
        if visibility == Visibility.PRIVATE:
            project.team = None
    project.visibility = visibility
    if visibility == Visibility.PUBLIC and not project.public_token:
        project.public_token = secrets.token_urlsafe(32)
    if visibility != Visibility.PUBLIC:
        project.public_token = None
    project.save(update_fields=["visibility", "team", "public_token"])
    return project


def project_rotate_link(*, user: User, project: Project) -> Project:
    """Invalidate the old public link and make a new one."""
    require_access(user, project, Access.ADMIN)
    if project.visibility != Visibility.PUBLIC:
        raise ValidationError({"visibility": "Only a public project has a link."})
    project.public_token = secrets.token_urlsafe(32)
    project.save(update_fields=["public_token"])
    return project


def project_update(*, user: User, project: Project, name: str | None = None, description: str | None = None) -> Project:
    """Rename a project (its slug, and so its URLs, stay) or change its description; needs admin access."""
    require_access(user, project, Access.ADMIN)
    fields = []
    if name is not None:
        if not slugify(name.strip()):
            raise ValidationError({"name": "Give the project a name with letters or digits."})
        project.name = name.strip()[:120]
        fields.append("name")
    if description is not None:
        project.description = description[:5000]
        fields.append("description")
    if fields:
        project.save(update_fields=fields)
    return project


def project_delete(*, user: User, project: Project) -> None:
    require_access(user, project, Access.ADMIN)
    project.delete()
