"""`kiln teams` and `kiln invitations` against a real server: answer an invitation, leave a team."""

from __future__ import annotations

import pytest

from webapp.accounts.models import Membership, Role, TeamInvitation
from webapp.client import cli

from ..webapp.factories import MembershipFactory, TeamFactory, UserFactory


@pytest.fixture
def invited(server, monkeypatch):
    """grace (the server's user) is invited to `vision-lab` as an editor by its admin, ada."""
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)
    team = TeamFactory(slug="vision-lab", name="Vision Lab")
    ada = MembershipFactory(team=team, role=Role.ADMIN, user=UserFactory(username="ada")).user
    TeamInvitation.objects.create(team=team, invitee=server.user, role=Role.EDITOR, invited_by=ada)
    return team


def _kiln(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_invitations_are_listed_then_accepted(invited, server, capsys):
    code, out, _ = _kiln(capsys, "invitations")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == ["TEAM", "NAME", "ROLE", "INVITED", "BY", "SENT"]
    assert row.split()[:5] == ["vision-lab", "Vision", "Lab", "editor", "ada"]
    assert "kiln invitations accept TEAM" in out
    code, out, err = _kiln(capsys, "invitations", "accept", "vision-lab")
    assert (code, out.strip(), err) == (0, "You joined vision-lab as editor", "")
    assert Membership.objects.get(team=invited, user=server.user).role == Role.EDITOR
    code, out, _ = _kiln(capsys, "teams")
    assert code == 0 and out.splitlines()[1].split() == ["vision-lab", "Vision", "Lab", "editor", "2"]
    code, out, _ = _kiln(capsys, "invitations")
    assert code == 0 and "(no invitations)" in out


def test_declining_an_invitation_joins_nothing(invited, server, capsys):
    code, out, _ = _kiln(capsys, "invitations", "decline", "vision-lab")
    assert (code, out.strip()) == (0, "Declined the invitation to vision-lab")
    assert not Membership.objects.filter(user=server.user).exists() and not TeamInvitation.objects.exists()
    code, _, err = _kiln(capsys, "invitations", "accept", "vision-lab")
    assert (code, err.strip()) == (1, "kiln: error: No such invitation")


def test_leaving_a_team_and_the_last_admin_is_refused_in_one_line(invited, server, capsys):
    _kiln(capsys, "invitations", "accept", "vision-lab")
    code, out, _ = _kiln(capsys, "teams", "leave", "vision-lab")
    assert (code, out.strip()) == (0, "You left vision-lab")
    assert not Membership.objects.filter(user=server.user).exists()
    solo = TeamFactory(slug="solo")
    MembershipFactory(team=solo, user=server.user, role=Role.ADMIN)
    code, _, err = _kiln(capsys, "teams", "leave", "solo")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "You are the last admin of solo: make another member admin before you leave." in err
    assert Membership.objects.filter(team=solo, user=server.user).exists()
