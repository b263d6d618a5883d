"""Writes for teams: create, invite by username (the invitee accepts or declines), change roles, remove, leave."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils.text import slugify

from webapp.accounts.models import Membership, Role, Team, TeamInvitation
from webapp.accounts.names import owner_name_check


def team_create(*, user: User, name: str) -> Team:
    """Create a team with `user` as its admin; its slug must be a free owner name."""
    name = name.strip()
    slug = slugify(name)[:60]
    if not slug:
        raise ValidationError({"name": "Give the team a name with letters or digits."})
    try:
        with transaction.atomic():
            owner_name_check(slug, field="name")
            team = Team.objects.create(slug=slug, name=name[:120])
            Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    except IntegrityError:
        raise ValidationError({"name": f"A team called {slug!r} already exists."}) from None
    return team


def team_role(user: User, team: Team) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(team=team, user_id=user.pk).values_list("role", flat=True).first()


def team_require_admin(user: User, team: Team) -> None:
    if team_role(user, team) != Role.ADMIN and not getattr(user, "is_superuser", False):
        raise PermissionDenied("Only team admins manage members")


def team_invite(*, user: User, team: Team, username: str, role: str = Role.VIEWER) -> TeamInvitation:
    """Invite an existing user to the team (team admins only); they join when they accept."""
    team_require_admin(user, team)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    invitee = get_user_model().objects.filter(username=username.strip(), is_active=True).first()
    if invitee is None:
        raise ValidationError({"username": f"No user called {username.strip()!r}."})
    if Membership.objects.filter(team=team, user=invitee).exists():
        raise ValidationError({"username": f"{invitee.get_username()} is already a member."})
    try:
        with transaction.atomic():
            return TeamInvitation.objects.create(team=team, invitee=invitee, role=role, invited_by=user)
    except IntegrityError:
        raise ValidationError({"username": f"{invitee.get_username()} is already invited."}) from None


def invitation_accept(*, user: User, team: Team) -> Membership:
    """The invitee joins `team` with the invited role; Http404 without a pending invitation."""
    with transaction.atomic():
        invitation = _pending(user, team)
        membership, _ = Membership.objects.get_or_create(team=team, user=user, defaults={"role": invitation.role})
        invitation.delete()
    return membership


def invitation_decline(*, user: User, team: Team) -> None:
    with transaction.atomic():
        _pending(user, team).delete()


def invitation_revoke(*, user: User, team: Team, invitee_id: int) -> None:
    """Withdraw a pending invitation (team admins); Http404 when there is none."""
    team_require_admin(user, team)
    if not TeamInvitation.objects.filter(team=team, invitee_id=invitee_id).delete()[0]:
        raise Http404("No such invitation")


def _pending(user: User, team: Team) -> TeamInvitation:
    invitation = TeamInvitation.objects.select_for_update().filter(team=team, invitee_id=user.pk).first()
    if invitation is None:
        raise Http404("No such invitation")
    return invitation


def team_set_role(*, user: User, team: Team, member_id: int, role: str) -> None:
    team_require_admin(user, team)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(team=team, user_id=member_id)
        if membership.role == Role.ADMIN and role != Role.ADMIN:
            _keep_an_admin(team)
        membership.role = role
        membership.save(update_fields=["role"])


def team_remove(*, user: User, team: Team, member_id: int) -> None:
    """Team admins remove anyone; members may leave. The last admin cannot go."""
    if user.pk != member_id:
        team_require_admin(user, team)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(team=team, user_id=member_id)
        if membership.role == Role.ADMIN:
            _keep_an_admin(team, leaving=user.pk == member_id)
        membership.delete()


def team_leave(*, user: User, team: Team) -> None:
    """Leave `team`; Membership.DoesNotExist when not a member, ValidationError for its last admin."""
    team_remove(user=user, team=team, member_id=user.pk)


def _keep_an_admin(team: Team, *, leaving: bool = False) -> None:
    if Membership.objects.filter(team=team, role=Role.ADMIN).count() <= 1:
        if leaving:
            raise ValidationError({"role": f"You are the last admin of {team.slug}: make another member admin before you leave."})
        raise ValidationError({"role": "A team needs at least one admin."})
