"""Reads for accounts: a user's teams, a team's members, a user's API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, F, QuerySet
from django.http import Http404

from webapp.accounts.models import ApiToken, Membership, Role, Team, TeamInvitation
from webapp.accounts.teams import team_role


def memberships_of(user: User) -> QuerySet[Membership]:
    """The user's memberships with their team and its member count, by team name."""
    return (
        Membership.objects.filter(user=user)
        .select_related("team")
        .annotate(member_count=Count("team__memberships"))
        .order_by("team__name")
    )


def teams_user_can_edit(user: User) -> QuerySet[Team]:
    """Teams in which the user may create projects (editor or admin)."""
    return Team.objects.filter(memberships__user=user, memberships__role__in=(Role.EDITOR, Role.ADMIN)).order_by("name")


def teams_of(user: User) -> QuerySet[Team]:
    return Team.objects.filter(memberships__user=user).order_by("name")


def team_for_member(user: User | AnonymousUser, slug: str) -> tuple[Team, str | None]:
    """A team and the user's role in it; Http404 unless the user belongs to it (or is a superuser)."""
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise Http404("No such team")
    role = team_role(user, team)  # type: ignore[arg-type]
    if role is None and not getattr(user, "is_superuser", False):
        raise Http404("No such team")
    return team, role


def team_members(team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__username")


def invitations_of(user: User) -> QuerySet[TeamInvitation]:
    """The user's pending team invitations, newest first, with the team and who invited."""
    return TeamInvitation.objects.filter(invitee=user.pk).select_related("team", "invitee", "invited_by").order_by("-created_at", "-id")


def team_invited_to(user: User | AnonymousUser, slug: str) -> Team:
    """The team that invited `user`; Http404 alike for no such team and no invitation (outsiders learn nothing)."""
    team = Team.objects.filter(slug=slug, invitations__invitee=user.pk).first()
    if team is None:
        raise Http404("No such invitation")
    return team


def team_invitations(team: Team) -> QuerySet[TeamInvitation]:
    """A team's pending invitations, by invitee."""
    return team.invitations.select_related("invitee", "invited_by").order_by("invitee__username")


def tokens_of(user: User) -> QuerySet[ApiToken]:
    """All of the user's tokens, newest first; revoked ones are kept for the record."""
    return ApiToken.objects.filter(user=user).order_by(F("revoked_at").asc(nulls_first=True), "-created_at")
