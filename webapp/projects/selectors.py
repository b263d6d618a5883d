"""Reads for projects."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from django.http import Http404

from webapp.projects.models import Project, Visibility
from webapp.projects.permissions import Access, require_access


def projects_visible_to(user: User | AnonymousUser) -> QuerySet[Project]:
    """Projects the user may see by ownership or membership (public links are not listed)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if getattr(user, "is_superuser", False):
        return Project.objects.all()
    member = Q(team__memberships__user=user.pk)
    return (
        Project.objects.filter(
            Q(owner_user=user.pk)
            | (member & Q(owner_user__isnull=True))
            | (member & ~Q(visibility=Visibility.PRIVATE))
        )
        .distinct()
        .select_related("owner_user", "team")
    )


def project_for(user: User | AnonymousUser, project_id: int, needed: Access = Access.VIEW) -> tuple[Project, Access]:
    """The project and the user's access if it is at least `needed`; Http404 for anyone who may not see it."""
    project = Project.objects.select_related("owner_user", "team").filter(id=project_id).first()
    if project is None:
        raise Http404("No such project")
    return project, require_access(user, project, needed)


def project_by_link(user: User | AnonymousUser, token: str) -> Project:
    """The public project behind a read-only link; Http404 for a wrong, rotated or revoked link."""
    project = (
        Project.objects.select_related("owner_user", "team")
        .filter(public_token=token, visibility=Visibility.PUBLIC)
        .first()
        if token
        else None
    )
    if project is None:
        raise Http404("No such link")
    require_access(user, project, Access.VIEW, link_token=token)
    return project


def project_by_ref(user: User | AnonymousUser, ref: str, needed: Access = Access.VIEW) -> Project:
    """A project by id ("42") or path ("owner/slug", owner a username or team slug); Http404 if unseen.

    Raises like `require_access`: Http404 for anyone who may not see it, PermissionDenied below `needed`.
    """
    ref = ref.strip().strip("/")
    projects = Project.objects.select_related("owner_user", "team")
    if ref.isdigit() and len(ref) < 19:
        found = projects.filter(id=int(ref)).first()
    elif ref.count("/") == 1 and "\x00" not in ref:
        owner, slug = ref.split("/")
        candidates = projects.filter(
            Q(owner_user__username=owner) | Q(owner_user__isnull=True, team__slug=owner), slug=slug
        )
        found = min(candidates[:2], key=lambda p: p.owner_user_id is None, default=None)
    else:
        found = None
    if found is None:
        raise Http404("No such project")
    require_access(user, found, needed)
    return found
