"""Team pages: my teams, a team's members, roles and invitations, my invitations. Writes go through webapp.accounts.teams."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.accounts.forms import InviteForm, RoleForm, TeamCreateForm
from webapp.accounts.models import Membership, Role, Team
from webapp.accounts.selectors import (
    invitations_of,
    memberships_of,
    team_for_member,
    team_invitations,
    team_invited_to,
    team_members,
)
from webapp.accounts.teams import (
    invitation_accept,
    invitation_decline,
    invitation_revoke,
    team_create,
    team_invite,
    team_remove,
    team_set_role,
)
from webapp.projects.selectors import projects_visible_to


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = team_create(user=request.user, name=form.cleaned_data["name"])  # type: ignore[arg-type]
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Created the team {team.name}. Invite its members below.")
            return redirect("team_detail", slug=team.slug)
    context = {
        "memberships": memberships_of(request.user), "form": form,  # type: ignore[arg-type]
        "invitation_count": invitations_of(request.user).count(),  # type: ignore[arg-type]
    }
    return render(request, "teams/list.html", context, status=400 if form.errors else 200)


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team, role = team_for_member(request.user, slug)
    return _team_page(request, team, role, InviteForm())


@login_required
@require_POST
def team_invite_view(request: HttpRequest, slug: str) -> HttpResponse:
    team, role = team_for_member(request.user, slug)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = team_invite(user=request.user, team=team, **form.cleaned_data)  # type: ignore[arg-type]
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                f"Invited {invitation.invitee.get_username()} as {invitation.get_role_display().lower()}; "
                "they join when they accept.",
            )
            return redirect("team_detail", slug=team.slug)
    return _team_page(request, team, role, form, status=400)


@login_required
@require_POST
def team_revoke_view(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    team, _ = team_for_member(request.user, slug)
    invitation_revoke(user=request.user, team=team, invitee_id=user_id)  # type: ignore[arg-type]
    messages.success(request, "Withdrew the invitation.")
    return redirect("team_detail", slug=team.slug)


@login_required
def invitation_list(request: HttpRequest) -> HttpResponse:
    return render(request, "teams/invitations.html", {"invitations": invitations_of(request.user)})  # type: ignore[arg-type]


@login_required
@require_POST
def invitation_accept_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_invited_to(request.user, slug)
    membership = invitation_accept(user=request.user, team=team)  # type: ignore[arg-type]
    messages.success(request, f"You joined {team.name} as {membership.get_role_display().lower()}.")
    return redirect("team_detail", slug=team.slug)


@login_required
@require_POST
def invitation_decline_view(request: HttpRequest, slug: str) -> HttpResponse:
    team = team_invited_to(request.user, slug)
    invitation_decline(user=request.user, team=team)  # type: ignore[arg-type]
    messages.success(request, f"Declined the invitation to {team.name}.")
    return redirect("invitation_list")


@login_required
@require_POST
def team_role_view(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    team, _ = team_for_member(request.user, slug)
    member = _membership(team, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: viewer, editor or admin.")
        return redirect("team_detail", slug=team.slug)
    try:
        team_set_role(user=request.user, team=team, member_id=user_id, role=form.cleaned_data["role"])  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, _message(exc))
    else:
        messages.success(request, f"{member.user.get_username()} is now {Role(form.cleaned_data['role']).label.lower()}.")
    return redirect("team_detail", slug=team.slug)


@login_required
@require_POST
def team_remove_view(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    team, _ = team_for_member(request.user, slug)
    member = _membership(team, user_id)
    leaving = user_id == request.user.pk
    try:
        team_remove(user=request.user, team=team, member_id=user_id)  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, _message(exc))
        return redirect("team_detail", slug=team.slug)
    if leaving:
        messages.success(request, f"You left {team.name}.")
        return redirect("team_list")
    messages.success(request, f"Removed {member.user.get_username()} from the team.")
    return redirect("team_detail", slug=team.slug)


def _team_page(request: HttpRequest, team: Team, role: str | None, invite_form: InviteForm, status: int = 200) -> HttpResponse:
    context = {
        "team": team,
        "role": role,
        "is_admin": role == Role.ADMIN or request.user.is_superuser,
        "members": team_members(team),
        "roles": Role.choices,
        "invite_form": invite_form,
        "invitations": team_invitations(team) if role == Role.ADMIN or request.user.is_superuser else [],
        "projects": projects_visible_to(request.user).filter(team=team).order_by("name"),
    }
    return render(request, "teams/detail.html", context, status=status)


def _membership(team: Team, user_id: int) -> Membership:
    member = Membership.objects.select_related("user").filter(team=team, user_id=user_id).first()
    if member is None:
        raise Http404("No such member")
    return member


def _add_errors(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _message(exc: ValidationError) -> str:
    return " ".join(message for messages_ in exc.message_dict.values() for message in messages_)
