"""Projects (list, create, address by owner/slug, visibility) and teams (create, invitations, members, roles)."""

from __future__ import annotations

from webapp.accounts.models import Membership, Role, Team
from webapp.projects.models import Project

from ..factories import MembershipFactory, ProjectFactory, TeamFactory


def test_projects_list_only_what_you_can_see(world):
    ProjectFactory(slug="secret")
    names = [p["path"] for p in world.api("viewer").get("/api/projects").json()["items"]]
    assert names == [world.path]


def test_create_a_personal_project_then_address_it_by_path(world):
    api = world.api("outsider")
    created = api.post("/api/projects", {"name": "Speech Models", "description": "asr"})
    assert created.status_code == 201
    body = created.json()
    assert body["path"] == f"{world.users['outsider'].username}/speech-models" and body["visibility"] == "private"
    assert api.get(f"/api/projects/{body['path']}").json()["id"] == body["id"]


def test_a_duplicate_project_name_gets_422_naming_the_field(world):
    response = world.api("owner").post("/api/projects", {"name": "MNIST"})
    assert response.status_code == 422 and response.json()["fields"] == [
        {"field": "name", "message": "There is already a project called 'mnist' here."}
    ]


def test_team_projects_need_an_editor_and_are_addressed_by_the_team_slug(world):
    editor = world.api("editor")
    created = editor.post("/api/projects", {"name": "Shared", "team": world.team.slug})
    assert created.status_code == 201 and created.json()["path"] == f"{world.team.slug}/shared"
    assert world.api("viewer").post("/api/projects", {"name": "Nope", "team": world.team.slug}).status_code == 403
    assert world.api("outsider").post("/api/projects", {"name": "Nope", "team": world.team.slug}).status_code == 404
    assert Project.objects.filter(slug="nope").count() == 0


def test_the_owner_changes_visibility(world):
    api = world.api("owner")
    assert api.patch(f"/api/projects/{world.path}", {"visibility": "private"}).json()["team"] is None
    assert world.api("viewer").get(f"/api/projects/{world.path}").status_code == 404
    public = api.patch(f"/api/projects/{world.path}", {"visibility": "public"})
    assert public.status_code == 200 and public.json()["visibility"] == "public"
    assert api.patch(f"/api/projects/{world.path}", {"visibility": "everyone"}).status_code == 422


def test_a_team_admin_administers_a_team_owned_project(world):
    project = ProjectFactory(owner_user=None, team=world.team, slug="team-work")
    path = f"{world.team.slug}/{project.slug}"
    assert world.api("admin").patch(f"/api/projects/{path}", {"visibility": "public"}).status_code == 200
    assert world.api("editor").patch(f"/api/projects/{path}", {"visibility": "private"}).status_code == 403


def test_teams_create_list_invite_change_role_remove(world):
    api = world.api("outsider")
    created = api.post("/api/teams", {"name": "Vision Group"})
    assert created.status_code == 201 and created.json() == {"slug": "vision-group", "name": "Vision Group", "role": "admin", "member_count": 1}
    assert [t["slug"] for t in api.get("/api/teams").json()] == ["vision-group"]
    newcomer = world.users["viewer"]
    invited = api.post("/api/teams/vision-group/invitations", {"username": newcomer.username, "role": "editor"})
    assert invited.status_code == 201 and invited.json()["role"] == "editor"
    assert api.post("/api/teams/vision-group/invitations", {"username": newcomer.username}).status_code == 422
    assert api.post("/api/teams/vision-group/invitations", {"username": "ghost"}).json()["fields"][0]["field"] == "username"
    assert world.api("viewer").post("/api/invitations/vision-group/accept").status_code == 200
    changed = api.patch(f"/api/teams/vision-group/members/{newcomer.pk}", {"role": "admin"})
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    members = {m["username"]: m["role"] for m in api.get("/api/teams/vision-group/members").json()}
    assert members == {world.users["outsider"].username: "admin", newcomer.username: "admin"}
    assert api.delete(f"/api/teams/vision-group/members/{newcomer.pk}").status_code == 204
    assert api.delete(f"/api/teams/vision-group/members/{newcomer.pk}").status_code == 404


def test_the_last_admin_cannot_step_down(world):
    admin = world.users["admin"]
    response = world.api("admin").patch(f"/api/teams/{world.team.slug}/members/{admin.pk}", {"role": "viewer"})
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "role"
    assert Membership.objects.get(team=world.team, user=admin).role == Role.ADMIN


def test_a_member_may_leave_and_outsiders_cannot_probe_teams(world):
    viewer = world.users["viewer"]
    assert world.api("viewer").delete(f"/api/teams/{world.team.slug}/members/{viewer.pk}").status_code == 204
    hidden = TeamFactory()
    MembershipFactory(team=hidden)
    outsider = world.api("outsider")
    assert outsider.get(f"/api/teams/{hidden.slug}/members").json() == outsider.get("/api/teams/no-such-team/members").json()
    assert Team.objects.filter(slug=hidden.slug).exists()


def test_an_invalid_role_gets_422(world):
    response = world.api("admin").post(f"/api/teams/{world.team.slug}/invitations", {"username": "x", "role": "owner"})
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "role"
