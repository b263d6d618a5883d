"""The one permission check. Every page, API handler and data endpoint asks `project_access`."""

from __future__ import annotations

from enum import IntEnum

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import Http404

from webapp.accounts.models import Membership, Role
from webapp.projects.models import Project, Visibility


class Access(IntEnum):
    NONE = 0
    VIEW = 1  # read runs, metrics, logs, artifacts
    EDIT = 2  # submit, cancel, re-run, tag runs; save dashboards
    ADMIN = 3  # settings, sharing, deleting the project

_ROLE_ACCESS = {Role.VIEWER: Access.VIEW, Role.EDITOR: Access.EDIT, Role.ADMIN: Access.ADMIN}


def project_access(
    user: User | AnonymousUser, project: Project, *, link_token: str | None = None
) -> Access:
    """What `user` (or a holder of the public link) may do in `project`."""
    access = Access.NONE
    if user.is_authenticated:
        if getattr(user, "is_superuser", False) or project.owner_user_id == user.pk:
            return Access.ADMIN
        if project.team_id and (project.team_owned or project.visibility != Visibility.PRIVATE):
            role = Membership.objects.filter(team_id=project.team_id, user_id=user.pk).values_list("role", flat=True).first()
            if role:
                access = _ROLE_ACCESS[Role(role)]
                if not project.team_owned:  # shared with a team: its members never administer it
                    access = min(access, Access.EDIT)
    if (
        access < Access.VIEW
        and link_token
        and project.visibility == Visibility.PUBLIC
        and project.public_token
        and link_token == project.public_token
    ):
        access = Access.VIEW
    return access


def require_access(
    user: User | AnonymousUser, project: Project, needed: Access, *, link_token: str | None = None
) -> Access:
    """Raise Http404 to anyone who cannot see the project, PermissionDenied to those who see but may not act."""
    access = project_access(user, project, link_token=link_token)
    if access < Access.VIEW:
        raise Http404("No such project")
    if access < needed:
        raise PermissionDenied(f"This needs {needed.name.lower()} access to the project")
    return access
