"""Writes for teams: create, invite by username, change roles, remove members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from webapp.accounts.models import Membership, Role, Team


def team_create(*, user: User, name: str) -> Team:
    """Create a team with `user` as its admin."""
    name = name.strip()
    slug = slugify(name)[:60]
    if not slug:
        raise ValidationError({"name": "Give the team a name with letters or digits."})
    try:
        with transaction.atomic():
            team = Team.objects.create(slug=slug, name=name[:120])
            Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    except IntegrityError:
        raise ValidationError({"name": f"A team called {slug!r} already exists."}) from None
    return team


def team_role(user: User, team: Team) -> str | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(team=team, user_id=user.pk).values_list("role", flat=True).first()


def _require_team_admin(user: User, team: Team) -> None:
    if team_role(user, team) != Role.ADMIN and not getattr(user, "is_superuser", False):
        raise PermissionDenied("Only team admins manage members")


def team_invite(*, user: User, team: Team, username: str, role: str = Role.VIEWER) -> Membership:
    """Add an existing user to the team (team admins only)."""
    _require_team_admin(user, team)
    if role not in Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Role.values)}."})
    invitee = get_user_model().objects.filter(username=username.strip(), is_active=True).first()
    if invitee is None:
        raise ValidationError({"username": f"No user called {username.strip()!r}."})
    membership, created = Membership.objects.get_or_create(team=team, user=invitee, defaults={"role": role})
    if not created:
        raise ValidationError({"username": f"{invitee.get_username()} is already a member."})
    return membership


def team_set_role(*, user: User, team: Team, member_id: int, role: str) -> None:
    _require_team_admin(user, team)
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
        _require_team_admin(user, team)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(team=team, user_id=member_id)
        if membership.role == Role.ADMIN:
            _keep_an_admin(team)
        membership.delete()


def _keep_an_admin(team: Team) -> None:
    if Membership.objects.filter(team=team, role=Role.ADMIN).count() <= 1:
        raise ValidationError({"role": "A team needs at least one admin."})
