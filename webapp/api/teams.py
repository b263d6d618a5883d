"""/api/teams: your teams, create one, and manage members (team admins)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.models import User
from django.http import Http404
from ninja import Router, Schema, Status
from pydantic import Field

from webapp.accounts.models import Membership, Role
from webapp.accounts.selectors import memberships_of, team_for_member, team_members
from webapp.accounts.teams import team_create, team_invite, team_remove, team_set_role
from webapp.api.auth import ApiRequest
from webapp.api.errors import ErrorOut
from webapp.api.schemas import Id, Text

router = Router(tags=["teams"])
Slug = Text


class TeamIn(Schema):
    name: Text = Field(min_length=1, max_length=120)


class TeamOut(Schema):
    slug: str
    name: str
    role: str | None
    member_count: int


class MemberOut(Schema):
    user_id: int
    username: str
    role: str


class InviteIn(Schema):
    username: Text = Field(min_length=1, max_length=150)
    role: Role = Role.VIEWER


class RoleIn(Schema):
    role: Role


@router.get("", response=list[TeamOut])
def list_teams(request: ApiRequest) -> list:
    """The teams you belong to, with your role."""
    return [
        {"slug": m.team.slug, "name": m.team.name, "role": m.role, "member_count": m.member_count}  # type: ignore[attr-defined]
        for m in memberships_of(request.auth)
    ]


@router.post("", response={201: TeamOut, 422: ErrorOut})
def create_team(request: ApiRequest, payload: TeamIn) -> Status:
    """A new team with you as its admin."""
    team = team_create(user=request.auth, name=payload.name)
    return Status(201, {"slug": team.slug, "name": team.name, "role": Role.ADMIN, "member_count": 1})


@router.get("/{slug}/members", response={200: list[MemberOut], 404: ErrorOut})
def list_members(request: ApiRequest, slug: Slug) -> list:
    team, _ = team_for_member(request.auth, slug)
    return [_member_out(m) for m in team_members(team)]


@router.post("/{slug}/members", response={201: MemberOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def invite_member(request: ApiRequest, slug: Slug, payload: InviteIn) -> Status:
    """Add an existing user to the team (team admins)."""
    team, _ = team_for_member(request.auth, slug)
    membership = team_invite(user=request.auth, team=team, username=payload.username, role=payload.role)
    return Status(201, _member_out(membership))


@router.patch("/{slug}/members/{user_id}", response={200: MemberOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def change_role(request: ApiRequest, slug: Slug, user_id: Id, payload: RoleIn) -> dict:
    """Change a member's role (team admins); a team always keeps one admin."""
    team, _ = team_for_member(request.auth, slug)
    with _member_or_404():
        team_set_role(user=request.auth, team=team, member_id=user_id, role=payload.role)
    return _member_out(team_members(team).get(user_id=user_id))


@router.delete("/{slug}/members/{user_id}", response={204: None, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def remove_member(request: ApiRequest, slug: Slug, user_id: Id) -> Status:
    """Remove a member (team admins), or leave the team yourself."""
    team, _ = team_for_member(request.auth, slug)
    with _member_or_404():
        team_remove(user=request.auth, team=team, member_id=user_id)
    return Status(204, None)


def _member_out(membership: Membership) -> dict:
    user: User = membership.user
    return {"user_id": user.pk, "username": user.get_username(), "role": membership.role}


@contextmanager
def _member_or_404() -> Iterator[None]:
    try:
        yield
    except Membership.DoesNotExist:
        raise Http404("No such member") from None
