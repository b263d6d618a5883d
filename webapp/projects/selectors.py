"""Reads for projects."""

from __future__ import annotations

from datetime import UTC
from functools import cache
from typing import cast

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection
from django.db.models import Model, Q, QuerySet
from django.http import Http404

from webapp.accounts.models import Team
from webapp.db import fetch_fixed
from webapp.ids import parse_id
from webapp.projects.models import Project, Visibility
from webapp.projects.permissions import Access, require_access


def projects_visible_to(user: User | AnonymousUser, *, with_deleted: bool = False) -> QuerySet[Project]:
    """Projects the user may see by ownership or membership (public links are not listed).

    `with_deleted`: soft-deleted ones too (the MLflow API's search_experiments with a view type).
    """
    projects = Project.all_objects if with_deleted else Project.objects
    if not user.is_authenticated:
        return projects.none()
    if getattr(user, "is_superuser", False):
        return projects.all()
    member = Q(team__memberships__user=user.pk)
    return (
        projects.filter(
            Q(owner_user=user.pk)
            | (member & Q(owner_user__isnull=True))
            | (member & ~Q(visibility=Visibility.PRIVATE))
        )
        .distinct()
        .select_related("owner_user", "team")
    )


def project_for(
    user: User | AnonymousUser, project_id: int, needed: Access = Access.VIEW, *, with_deleted: bool = False
) -> tuple[Project, Access]:
    """The project and the user's access if it is at least `needed`; Http404 for anyone who may not see it.

    `with_deleted`: a soft-deleted project too (the MLflow API's get_experiment and restore_experiment).
    """
    project = project_by_id(project_id, with_deleted=with_deleted)
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

    Users and teams share one namespace (webapp.accounts.names), so an owner name means one owner;
    should two ever match, the path is ambiguous and resolves to nothing rather than to a guess.
    Raises like `require_access`: Http404 for anyone who may not see it, PermissionDenied below `needed`.
    """
    ref = ref.strip().strip("/")
    if (project_id := parse_id(ref)) is not None:
        found = project_by_id(project_id)
    elif ref.count("/") == 1 and "\x00" not in ref:
        owner, slug = ref.split("/")
        candidates = Project.objects.select_related("owner_user", "team").filter(
            Q(owner_user__username=owner) | Q(owner_user__isnull=True, team__slug=owner), slug=slug
        )
        matches = list(candidates[:2])
        found = matches[0] if len(matches) == 1 else None
    else:
        found = None
    if found is None:
        raise Http404("No such project")
    require_access(user, found, needed)
    return found


def project_by_id(project_id: int, *, with_deleted: bool = False) -> Project | None:
    """The project with its owner and team loaded, in one query compiled once: every API call and page asks this.

    A soft-deleted project counts as none, as `Project.objects` says, unless `with_deleted`.
    """
    sql, layout = _project_query()
    rows = fetch_fixed(sql, [project_id])
    if not rows or (rows[0][layout[0][1].index("deleted_at")] is not None and not with_deleted):
        return None
    row = rows[0]
    loaded: list[Model | None] = []
    start = 0
    for model, names, datetimes in layout:
        values = list(row[start:start + len(names)])
        start += len(names)
        for index in datetimes:  # SQLite's come back naive, in UTC
            if values[index] is not None and values[index].tzinfo is None:
                values[index] = values[index].replace(tzinfo=UTC)
        loaded.append(None if values[0] is None else model.from_db(connection.alias, names, values))
    project, owner, team = loaded
    project = cast(Project, project)  # the query's first columns are the project's, never NULL
    project._state.fields_cache["owner_user"] = owner  # what select_related would have set
    project._state.fields_cache["team"] = team
    return project


@cache
def _project_query() -> tuple[str, list[tuple[type[Model], list[str], list[int]]]]:
    """`SELECT project, owner, team ... WHERE project.id = %s`; per model, its columns' names and which are datetimes."""
    quote = connection.ops.quote_name
    tables = [(Project, "p"), (User, "u"), (Team, "t")]
    columns, layout = [], []
    for model, alias in tables:
        fields = model._meta.concrete_fields
        columns += [f"{alias}.{quote(str(field.column))}" for field in fields]
        datetimes = [index for index, field in enumerate(fields) if field.get_internal_type() == "DateTimeField"]
        layout.append((model, [field.attname for field in fields], datetimes))
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(Project._meta.db_table)} p "  # noqa: S608 -- model tables only
        f"LEFT JOIN {quote(User._meta.db_table)} u ON u.id = p.owner_user_id "
        f"LEFT JOIN {quote(Team._meta.db_table)} t ON t.id = p.team_id WHERE p.id = CAST(%s AS bigint)"
    )
    return sql, layout
