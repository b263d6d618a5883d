"""One permission check decides everything; owners, members by role, outsiders, anonymous, link holders."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from webapp.accounts.models import Role
from webapp.projects.models import Visibility
from webapp.projects.permissions import Access, project_access, require_access
from webapp.projects.selectors import projects_visible_to
from webapp.projects.services import project_create, project_rotate_link, project_set_visibility

from .factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_project():
    team = TeamFactory()
    members = {role: MembershipFactory(team=team, role=role).user for role in Role.values}
    return ProjectFactory(owner_user=None, team=team), members


def test_owner_administers_a_private_project_and_an_outsider_sees_nothing():
    project = ProjectFactory()
    outsider = UserFactory()
    assert project_access(project.owner_user, project) == Access.ADMIN
    assert project_access(outsider, project) == Access.NONE
    assert project_access(AnonymousUser(), project) == Access.NONE
    with pytest.raises(Http404):
        require_access(outsider, project, Access.VIEW)
    assert list(projects_visible_to(outsider)) == []


@pytest.mark.parametrize(("role", "access"), [(Role.VIEWER, Access.VIEW), (Role.EDITOR, Access.EDIT), (Role.ADMIN, Access.ADMIN)])
def test_team_members_get_their_role_in_a_team_project(team_project, role, access):
    project, members = team_project
    assert project_access(members[role], project) == access
    assert project in projects_visible_to(members[role])


def test_viewer_may_see_but_not_edit_and_gets_403_not_404(team_project):
    project, members = team_project
    with pytest.raises(PermissionDenied):
        require_access(members[Role.VIEWER], project, Access.EDIT)


def test_sharing_a_users_project_with_a_team_caps_members_at_edit(team_project):
    _, members = team_project
    team = members[Role.ADMIN].memberships.get().team
    owner = UserFactory()
    MembershipFactory(team=team, user=owner, role=Role.VIEWER)
    project = project_create(user=owner, name="Shared work")
    assert project_access(members[Role.ADMIN], project) == Access.NONE
    project_set_visibility(user=owner, project=project, visibility=Visibility.TEAM, team=team)
    assert project_access(members[Role.ADMIN], project) == Access.EDIT
    assert project_access(members[Role.VIEWER], project) == Access.VIEW
    project_set_visibility(user=owner, project=project, visibility=Visibility.PRIVATE)
    assert project_access(members[Role.EDITOR], project) == Access.NONE


def test_public_link_gives_read_only_access_and_is_revocable():
    project = ProjectFactory()
    owner, stranger = project.owner_user, UserFactory()
    project_set_visibility(user=owner, project=project, visibility=Visibility.PUBLIC)
    token = project.public_token
    assert token and len(token) >= 40
    assert project_access(AnonymousUser(), project, link_token=token) == Access.VIEW
    assert project_access(stranger, project, link_token=token) == Access.VIEW
    assert project_access(stranger, project, link_token="guess") == Access.NONE
    assert project not in projects_visible_to(stranger)
    project_rotate_link(user=owner, project=project)
    assert project_access(AnonymousUser(), project, link_token=token) == Access.NONE
    project_set_visibility(user=owner, project=project, visibility=Visibility.PRIVATE)
    assert project.public_token is None


def test_only_admins_change_sharing(team_project):
    project, members = team_project
    with pytest.raises(PermissionDenied):
        project_set_visibility(user=members[Role.EDITOR], project=project, visibility=Visibility.PUBLIC)
    project.refresh_from_db()
    assert project.visibility == Visibility.PRIVATE and project.public_token is None
