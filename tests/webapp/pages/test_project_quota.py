"""The project page shows the signed-in user their quota (and, on a team's project, the team's) with what is in use."""

from __future__ import annotations

import pytest
from django.test import Client

from webapp.accounts.models import Role
from webapp.cluster.models import Quota
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import run_submit

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def page(user, project) -> str:
    client = Client()
    client.force_login(user)
    return client.get(f"/p/{project.id}/").content.decode()


def test_a_user_sees_their_quota_and_what_they_hold():
    alice = UserFactory(username="alice")
    project = ProjectFactory(owner_user=alice)
    Quota.objects.create(user=alice, gpus=4, runs=2)
    spec = {"recipe": {"model": "mlp"}, "resources": {"gpus": 1}}
    runs = [run_submit(user=alice, project=project, spec=spec).runs[0] for _ in range(2)]
    Run.objects.filter(id__in=[r.id for r in runs]).update(state=RunState.RUNNING)

    html = page(alice, project)

    assert "Your quota" in html and "GPUs: 2 of 4" in html and "Runs at once: 2 of 2" in html


def test_on_a_teams_project_the_teams_quota_is_shown_too():
    team = TeamFactory(slug="ml")
    member = MembershipFactory(team=team, role=Role.EDITOR).user
    project = ProjectFactory(owner_user=None, team=team)
    Quota.objects.create(team=team, cpus=16)

    html = page(member, project)

    assert "Team ml&#x27;s quota" in html and "CPUs: 0 of 16" in html and "Your quota" not in html


def test_no_quota_no_panel():
    alice = UserFactory()
    project = ProjectFactory(owner_user=alice)
    Quota.objects.create(user=UserFactory(), gpus=1)  # someone else's

    assert 'id="quota-panel"' not in page(alice, project)
