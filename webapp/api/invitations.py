"""/api/invitations: the team invitations waiting for you; accept (you join) or decline."""

from __future__ import annotations

from ninja import Router, Status

from webapp.accounts.selectors import invitations_of, team_invited_to
from webapp.accounts.teams import invitation_accept, invitation_decline
from webapp.api.auth import ApiRequest
from webapp.api.errors import ErrorOut
from webapp.api.teams import InvitationOut, Slug, TeamOut, invitation_out

router = Router(tags=["teams"])


@router.get("", response=list[InvitationOut])
def list_my_invitations(request: ApiRequest) -> list:
    """Your pending team invitations, newest first."""
    return [invitation_out(invitation) for invitation in invitations_of(request.auth)]


@router.post("/{slug}/accept", response={200: TeamOut, 404: ErrorOut})
def accept_invitation(request: ApiRequest, slug: Slug) -> dict:
    """Join the team with the role you were invited to."""
    membership = invitation_accept(user=request.auth, team=team_invited_to(request.auth, slug))
    team = membership.team
    return {"slug": team.slug, "name": team.name, "role": membership.role, "member_count": team.memberships.count()}


@router.post("/{slug}/decline", response={204: None, 404: ErrorOut})
def decline_invitation(request: ApiRequest, slug: Slug) -> Status:
    invitation_decline(user=request.auth, team=team_invited_to(request.auth, slug))
    return Status(204, None)
