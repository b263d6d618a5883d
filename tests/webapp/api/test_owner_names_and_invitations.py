"""Owner names cannot be taken over, and joining a team needs the invitee's acceptance (API)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from webapp.accounts.models import Membership, Role, Team, TeamInvitation
from webapp.accounts.names import owner_clashes_resolve
from webapp.accounts.tokens import token_create
from webapp.experiments.models import Run
from webapp.projects.models import Project

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory
from .conftest import Api

User = get_user_model()


def _api(user) -> Api:
    return Api(token_create(user=user, name="tests")[1])


def test_a_team_named_after_a_user_is_refused_so_his_paths_stay_his(db):
    dave = UserFactory(username="dave")
    ProjectFactory(owner_user=dave, slug="mx-digits")
    mallory = _api(UserFactory(username="mallory"))
    for name in ("dave", "Dave", "DAVE"):
        response = mallory.post("/api/teams", {"name": name})
        assert response.status_code == 422, name
        assert response.json()["fields"][0]["field"] == "name"
        assert "'dave' is taken by a user" in response.json()["fields"][0]["message"]
    assert not Team.objects.exists()
    submitted = _api(dave).post("/api/runs", {"project": "dave/mx-digits", "spec": {"recipe": {"model": "mlp"}}})
    assert submitted.status_code == 201
    assert Run.objects.get().project.owner_user == dave


def test_an_invited_user_is_not_a_member_until_accepting(db):
    admin, dave = UserFactory(username="ann"), UserFactory(username="dave")
    team = TeamFactory(slug="vision")
    MembershipFactory(team=team, user=admin, role=Role.ADMIN)
    project = ProjectFactory(owner_user=None, team=team, slug="mx-digits")
    invited = _api(admin).post("/api/teams/vision/invitations", {"username": "dave", "role": "editor"})
    assert invited.status_code == 201
    assert invited.json() | {"created_at": None} == {
        "team": "vision", "team_name": team.name, "user_id": dave.pk, "username": "dave", "role": "editor",
        "invited_by": "ann", "created_at": None,
    }
    invitee = _api(dave)
    assert not Membership.objects.filter(team=team, user=dave).exists()
    assert invitee.get(f"/api/projects/{project.id}").status_code == 404
    assert [i["team"] for i in invitee.get("/api/invitations").json()] == ["vision"]
    accepted = invitee.post("/api/invitations/vision/accept")
    assert accepted.status_code == 200 and accepted.json() == {"slug": "vision", "name": team.name, "role": "editor", "member_count": 2}
    assert Membership.objects.get(team=team, user=dave).role == Role.EDITOR
    assert not TeamInvitation.objects.exists() and invitee.get("/api/invitations").json() == []
    assert invitee.get(f"/api/projects/{project.id}").status_code == 200
    assert invitee.post("/api/invitations/vision/accept").status_code == 404  # answered once


def test_inviting_a_member_or_an_invited_user_again_is_refused(world):
    api = world.api("admin")
    assert api.post(f"/api/teams/{world.team.slug}/invitations", {"username": world.users["viewer"].username}).status_code == 422
    newcomer = UserFactory()
    assert api.post(f"/api/teams/{world.team.slug}/invitations", {"username": newcomer.username}).status_code == 201
    again = api.post(f"/api/teams/{world.team.slug}/invitations", {"username": newcomer.username, "role": "admin"})
    assert again.status_code == 422 and "already invited" in again.json()["fields"][0]["message"]
    assert TeamInvitation.objects.get().role == Role.VIEWER


def test_declining_leaves_no_membership_and_the_team_may_invite_again(world):
    newcomer = UserFactory()
    admin = world.api("admin")
    admin.post(f"/api/teams/{world.team.slug}/invitations", {"username": newcomer.username})
    assert _api(newcomer).post(f"/api/invitations/{world.team.slug}/decline").status_code == 204
    assert not Membership.objects.filter(user=newcomer).exists() and not TeamInvitation.objects.exists()
    assert admin.post(f"/api/teams/{world.team.slug}/invitations", {"username": newcomer.username}).status_code == 201


def test_team_admins_list_and_revoke_pending_invitations(world):
    newcomer = UserFactory()
    slug = world.team.slug
    world.api("admin").post(f"/api/teams/{slug}/invitations", {"username": newcomer.username, "role": "editor"})
    listed = world.api("admin").get(f"/api/teams/{slug}/invitations").json()
    assert [(i["username"], i["role"]) for i in listed] == [(newcomer.username, "editor")]
    assert world.api("editor").get(f"/api/teams/{slug}/invitations").status_code == 403
    assert world.api("editor").delete(f"/api/teams/{slug}/invitations/{newcomer.pk}").status_code == 403
    assert world.api("admin").delete(f"/api/teams/{slug}/invitations/{newcomer.pk}").status_code == 204
    assert world.api("admin").delete(f"/api/teams/{slug}/invitations/{newcomer.pk}").status_code == 404
    assert _api(newcomer).post(f"/api/invitations/{slug}/accept").status_code == 404
    assert not Membership.objects.filter(user=newcomer).exists()


def test_no_invitation_and_no_team_answer_alike(world):
    outsider = world.api("outsider")
    unknown = outsider.post("/api/invitations/no-such-team/accept")
    uninvited = outsider.post(f"/api/invitations/{world.team.slug}/accept")
    assert unknown.status_code == uninvited.status_code == 404 and unknown.json() == uninvited.json()
    assert outsider.post(f"/api/invitations/{world.team.slug}/decline").json() == unknown.json()


def test_a_member_leaves_but_the_last_admin_cannot(world):
    slug = world.team.slug
    assert world.api("viewer").post(f"/api/teams/{slug}/leave").status_code == 204
    assert not Membership.objects.filter(team=world.team, user=world.users["viewer"]).exists()
    assert world.api("viewer").post(f"/api/teams/{slug}/leave").status_code == 404
    refused = world.api("admin").post(f"/api/teams/{slug}/leave")
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["message"] == (
        f"You are the last admin of {slug}: make another member admin before you leave."
    )
    assert Membership.objects.get(team=world.team, user=world.users["admin"]).role == Role.ADMIN
    assert world.api("outsider").post(f"/api/teams/{slug}/leave").status_code == 404


def test_members_are_no_longer_added_without_their_consent(world):
    response = world.api("admin").post(f"/api/teams/{world.team.slug}/members", {"username": world.users["outsider"].username})
    assert response.status_code == 405
    assert not Membership.objects.filter(user=world.users["outsider"]).exists()


def test_a_path_whose_owner_name_two_owners_hold_resolves_to_neither(db):
    """Legacy data from before the one namespace: `vision/mx-digits` must not be guessed."""
    team = TeamFactory(slug="vision")
    member = MembershipFactory(team=team, role=Role.EDITOR).user
    ProjectFactory(owner_user=None, team=team, slug="mx-digits")
    mallory = User.objects.bulk_create([User(username="vision")])[0]  # past every check, as an old row would be
    ProjectFactory(owner_user=mallory, slug="mx-digits")
    assert _api(member).get("/api/projects/vision/mx-digits").status_code == 404
    assert _api(member).post("/api/runs", {"project": "vision/mx-digits", "spec": {"recipe": {"model": "mlp"}}}).status_code == 404
    assert not Run.objects.exists()
    # the migration's rule renames the team; each path then means one owner
    assert owner_clashes_resolve(users=User, teams=Team) == [("vision", "vision-team")]
    assert _api(member).get("/api/projects/vision-team/mx-digits").json()["team_owned"] is True
    assert _api(member).get("/api/projects/vision/mx-digits").status_code == 404  # mallory's, private
    assert Project.objects.filter(owner_user=mallory).count() == 1


def test_reserved_names_cannot_be_team_names(world):
    for name in ("api", "Admin", "teams", "share", "p", "invitations"):
        response = world.api("outsider").post("/api/teams", {"name": name})
        assert response.status_code == 422 and "reserved" in response.json()["fields"][0]["message"], name
    assert Team.objects.count() == 1
