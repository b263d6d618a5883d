"""Reads for projects."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from webapp.projects.models import Project, Visibility


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
