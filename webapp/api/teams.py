"""/api/teams: your teams, create one, manage members and invitations (team admins), leave one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.contrib.auth.models import User
from django.http import Http404
from ninja import Router, Schema, Status
from pydantic import Field

from webapp.accounts.models import Membership, Role, TeamInvitation
from webapp.accounts.selectors import memberships_of, team_for_member, team_invitations, team_members
from webapp.accounts.teams import (
    invitation_revoke,
    team_create,
    team_invite,
    team_leave,
    team_remove,
    team_require_admin,
    team_set_role,
)
from webapp.api.auth import ApiRequest
from webapp.api.errors import ErrorOut
from webapp.api.schemas import BodyIn, Id, Text

router = Router(tags=["teams"])
Slug = Text


class TeamIn(BodyIn):
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


class InviteIn(BodyIn):
    username: Text = Field(min_length=1, max_length=150)
    role: Role = Role.VIEWER


class RoleIn(BodyIn):
    role: Role


class InvitationOut(Schema):
    team: str
    team_name: str
    user_id: int
    username: str
    role: str
    invited_by: str | None
    created_at: datetime


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


@router.get("/{slug}/invitations", response={200: list[InvitationOut], 403: ErrorOut, 404: ErrorOut})
def list_invitations(request: ApiRequest, slug: Slug) -> list:
    """The team's pending invitations (team admins)."""
    team, _ = team_for_member(request.auth, slug)
    team_require_admin(request.auth, team)
    return [invitation_out(invitation) for invitation in team_invitations(team)]


@router.post("/{slug}/invitations", response={201: InvitationOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def invite_member(request: ApiRequest, slug: Slug, payload: InviteIn) -> Status:
    """Invite an existing user (team admins); they become a member when they accept (`/api/invitations`)."""
    team, _ = team_for_member(request.auth, slug)
    invitation = team_invite(user=request.auth, team=team, username=payload.username, role=payload.role)
    return Status(201, invitation_out(invitation))


@router.delete("/{slug}/invitations/{user_id}", response={204: None, 403: ErrorOut, 404: ErrorOut})
def revoke_invitation(request: ApiRequest, slug: Slug, user_id: Id) -> Status:
    """Withdraw a pending invitation (team admins)."""
    team, _ = team_for_member(request.auth, slug)
    invitation_revoke(user=request.auth, team=team, invitee_id=user_id)
    return Status(204, None)


@router.post("/{slug}/leave", response={204: None, 404: ErrorOut, 422: ErrorOut})
def leave_team(request: ApiRequest, slug: Slug) -> Status:
    """Leave the team; its last admin cannot (make someone else admin first)."""
    team, _ = team_for_member(request.auth, slug)
    with _member_or_404():
        team_leave(user=request.auth, team=team)
    return Status(204, None)


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


def invitation_out(invitation: TeamInvitation) -> dict:
    inviter = invitation.invited_by
    return {
        "team": invitation.team.slug, "team_name": invitation.team.name, "user_id": invitation.invitee_id,
        "username": invitation.invitee.get_username(), "role": invitation.role,
        "invited_by": inviter.get_username() if inviter else None, "created_at": invitation.created_at,
    }


def _member_out(membership: Membership) -> dict:
    user: User = membership.user
    return {"user_id": user.pk, "username": user.get_username(), "role": membership.role}


@contextmanager
def _member_or_404() -> Iterator[None]:
    try:
        yield
    except Membership.DoesNotExist:
        raise Http404("No such member") from None
