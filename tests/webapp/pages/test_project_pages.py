"""Creating projects, sharing them, the public link, and the run table's filters, sort and pages."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from webapp.accounts.models import Role
from webapp.experiments.models import Run
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project, Visibility
from webapp.projects.services import project_set_visibility

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _runs(project, count, **spec):
    owner = project.owner_user
    return run_submit(
        user=owner, project=project,
        spec={"recipe": {"model": "mlp"}, "sweep": {"parameters": {"seed": {"values": list(range(count))}}}, **spec},
    ).runs


# ---- create ----

def test_user_creates_a_personal_project_listed_on_home():
    user = UserFactory()
    client = _client(user)
    response = client.post("/projects/new/", {"name": "Speech", "description": "ASR baselines"})
    project = Project.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/p/{project.id}/"
    assert project.owner_user == user and project.visibility == Visibility.PRIVATE
    home = client.get("/").content.decode()
    assert "Speech" in home and "Workers online" in home


def test_team_editors_create_team_projects_and_viewers_cannot():
    team = TeamFactory()
    editor = MembershipFactory(team=team, role=Role.EDITOR).user
    viewer = MembershipFactory(team=team, role=Role.VIEWER).user
    assert team.name in _client(editor).get("/projects/new/").content.decode()
    assert _client(editor).post("/projects/new/", {"name": "Shared", "team": team.id}).status_code == 302
    assert Project.objects.get().team == team and Project.objects.get().owner_user is None
    response = _client(viewer).post("/projects/new/", {"name": "Sneaky", "team": team.id})
    assert response.status_code == 400 and b"Select a valid choice" in response.content
    assert Project.objects.count() == 1


def test_bad_project_names_create_nothing():
    user = UserFactory()
    client = _client(user)
    client.post("/projects/new/", {"name": "Speech"})
    for name in ("Speech", "???", ""):
        assert client.post("/projects/new/", {"name": name}).status_code == 400
    assert Project.objects.count() == 1


# ---- settings and sharing ----

def test_owner_shares_with_a_team_then_publicly_rotates_and_revokes():
    owner = UserFactory()
    team = TeamFactory()
    MembershipFactory(team=team, user=owner, role=Role.VIEWER)
    teammate = MembershipFactory(team=team, role=Role.EDITOR).user
    project = ProjectFactory(owner_user=owner)
    client = _client(owner)
    assert _client(teammate).get(f"/p/{project.id}/").status_code == 404

    assert client.post(f"/p/{project.id}/settings/", {"visibility": "team", "team": team.id}).status_code == 302
    assert _client(teammate).get(f"/p/{project.id}/").status_code == 200

    client.post(f"/p/{project.id}/settings/", {"visibility": "public", "team": team.id})
    project.refresh_from_db()
    first = project.public_token
    page = client.get(f"/p/{project.id}/settings/").content.decode()
    assert f"/share/{first}/" in page
    assert Client().get(f"/share/{first}/").status_code == 200

    client.post(f"/p/{project.id}/settings/rotate/")
    project.refresh_from_db()
    assert project.public_token != first
    assert Client().get(f"/share/{first}/").status_code == 404
    assert Client().get(f"/share/{project.public_token}/").status_code == 200

    second = project.public_token
    client.post(f"/p/{project.id}/settings/revoke/")
    project.refresh_from_db()
    assert project.visibility == Visibility.TEAM and project.public_token is None and project.team == team
    assert Client().get(f"/share/{second}/").status_code == 404
    assert _client(teammate).get(f"/p/{project.id}/").status_code == 200


def test_sharing_with_a_team_needs_a_team_and_changes_nothing_without_one():
    project = ProjectFactory()
    response = _client(project.owner_user).post(f"/p/{project.id}/settings/", {"visibility": "team"})
    assert response.status_code == 400 and b"Choose the team" in response.content
    project.refresh_from_db()
    assert project.visibility == Visibility.PRIVATE


def test_delete_needs_the_slug_typed():
    project = ProjectFactory(slug="keep-me")
    client = _client(project.owner_user)
    response = client.post(f"/p/{project.id}/settings/delete/", {"confirm": "nope"})
    assert response.status_code == 400 and b"Type keep-me" in response.content
    assert Project.objects.filter(id=project.id).exists()
    assert client.post(f"/p/{project.id}/settings/delete/", {"confirm": "keep-me"}).status_code == 302
    assert not Project.objects.filter(id=project.id).exists()


def test_public_link_shows_runs_read_only_to_anonymous_visitors():
    project = ProjectFactory()
    run = _runs(project, 1)[0]
    metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, 0.5, 1.0)])
    project_set_visibility(user=project.owner_user, project=project, visibility=Visibility.PUBLIC)
    token = project.public_token
    anonymous = Client()
    table = anonymous.get(f"/share/{token}/").content.decode()
    assert f"/share/{token}/runs/{run.id}/" in table and "New run" not in table and "Settings" not in table
    page = anonymous.get(f"/share/{token}/runs/{run.id}/")
    assert page.status_code == 200
    assert b"Cancel run" not in page.content and b"Re-run" not in page.content
    assert f"/share/{token}/runs/{run.id}/metrics.json".encode() in page.content
    data = anonymous.get(f"/share/{token}/runs/{run.id}/metrics.json").json()
    assert data["series"]["loss"]["values"] == [0.5]
    assert anonymous.get(f"/share/{token}/runs/{run.id}/logs.json").status_code == 200
    # the link opens this project only, and only reads
    other = _runs(ProjectFactory(), 1)[0]
    assert anonymous.get(f"/share/{token}/runs/{other.id}/").status_code == 404
    assert anonymous.get(f"/share/{token}/runs/{other.id}/metrics.json").status_code == 404
    assert anonymous.post(f"/runs/{run.id}/cancel/").status_code == 404
    assert anonymous.get("/share/not-a-token/").status_code == 404
    run.refresh_from_db()
    assert run.state == "queued"


def test_a_private_projects_old_token_opens_nothing():
    project = ProjectFactory(public_token="stale-token-value", visibility=Visibility.PRIVATE)
    assert Client().get("/share/stale-token-value/").status_code == 404
    assert project.runs.count() == 0


# ---- the run table ----

def test_run_table_filters_by_state_tag_owner_name_param_and_metric():
    project = ProjectFactory()
    runs = _runs(project, 4, tags=["base"])
    for index, run in enumerate(runs):
        metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, 0.2 * (index + 1), 1.0)])
    Run.objects.filter(id=runs[0].id).update(state="running", name="special-one")
    teammate_run = _runs(project, 1)[0]
    client = _client(project.owner_user)

    def numbers(query):
        response = client.get(f"/p/{project.id}/?{query}")
        assert response.status_code == 200
        return [row.run.number for row in response.context["table"].rows]

    assert numbers("") == [5, 4, 3, 2, 1]
    assert numbers("state=running") == [1]
    assert numbers("tag=base") == [4, 3, 2, 1]
    assert numbers(f"owner={project.owner_user.username}") == [5, 4, 3, 2, 1]
    assert numbers("owner=nobody") == []
    assert numbers("q=SPECIAL") == [1]
    assert numbers("param=seed%3D2") == [3]
    assert numbers("param=seed%3E%3D2") == [4, 3]
    assert numbers("param=seed!%3D0") == [4, 3, 2]
    assert numbers("param=optimizer.lr%3D0.001") == [5, 4, 3, 2, 1]
    assert numbers("param=model%3Dmlp") == [5, 4, 3, 2, 1]
    assert numbers("metric=loss%3C0.5") == [2, 1]
    assert numbers("metric=loss%3E%3D0.6") == [4, 3]
    assert numbers("state=queued&metric=loss%3C0.5") == [2]
    assert teammate_run.number == 5


def test_run_table_sorts_by_columns_and_metrics():
    project = ProjectFactory()
    runs = _runs(project, 3)
    for run, loss in zip(runs, (0.3, 0.1, 0.2), strict=True):
        metrics_log(run_id=run.id, points=[MetricPoint("loss", 0, loss, 1.0)])
    _runs(project, 1)  # run 4 has no loss: it sorts last either way
    client = _client(project.owner_user)

    def numbers(sort):
        return [row.run.number for row in client.get(f"/p/{project.id}/?sort={sort}").context["table"].rows]

    assert numbers("metric:loss") == [2, 3, 1, 4]
    assert numbers("-metric:loss") == [1, 3, 2, 4]
    assert numbers("number") == [1, 2, 3, 4]
    assert numbers("-number") == [4, 3, 2, 1]
    page = client.get(f"/p/{project.id}/?sort=metric:loss").content.decode()
    assert "loss ▲" in page and "0.1" in page


def test_bad_filters_are_explained_and_ignored():
    project = ProjectFactory()
    _runs(project, 2)
    client = _client(project.owner_user)
    response = client.get(f"/p/{project.id}/?metric=loss%3Chigh&param=nonsense&sort=bogus&state=melted&page=x")
    assert response.status_code == 200
    content = response.content.decode()
    assert "is not a number" in content and "Write it as name=value" in content and "Cannot sort by" in content
    assert len(response.context["table"].rows) == 2


def test_run_table_pages_hold_25_runs_with_newer_and_older_links():
    project = ProjectFactory()
    _runs(project, 30)
    client = _client(project.owner_user)
    first = client.get(f"/p/{project.id}/?state=queued")
    assert len(first.context["table"].rows) == 25 and first.context["table"].has_next
    assert b"state=queued&amp;page=2" in first.content
    second = client.get(f"/p/{project.id}/?state=queued&page=2")
    assert [row.run.number for row in second.context["table"].rows] == [5, 4, 3, 2, 1]
    assert not second.context["table"].has_next and b"Older" not in second.content
    assert client.get(f"/p/{project.id}/?page=99").context["table"].rows == []


def test_user_content_is_escaped_everywhere():
    project = ProjectFactory(name="<script>alert(1)</script>")
    run_submit(user=project.owner_user, project=project, spec={"name": "<img src=x onerror=alert(2)>", "recipe": {"model": "mlp"}})
    client = _client(project.owner_user)
    for url in ("/", f"/p/{project.id}/", f"/p/{project.id}/runs/1/", f"/p/{project.id}/settings/"):
        content = client.get(url).content.decode()
        assert "<script>alert(1)" not in content and "<img src=x" not in content
        assert "&lt;" in content


@pytest.mark.parametrize("with_filters", [False, True])
def test_run_table_queries_do_not_grow_with_runs(with_filters):
    team = TeamFactory()
    project = ProjectFactory(owner_user=None, team=team)
    member = MembershipFactory(team=team, role=Role.EDITOR).user
    client = _client(member)
    query = "?tag=t&metric=loss%3C9&sort=-metric:loss&param=seed%3E%3D0" if with_filters else ""

    def queries_with(total):
        created = Run.objects.filter(project=project).count()
        owner = UserFactory()
        MembershipFactory(team=team, user=owner, role=Role.EDITOR)
        for run in run_submit(user=owner, project=project, spec={
            "recipe": {"model": "mlp"}, "tags": ["t", "u"],
            "sweep": {"parameters": {"seed": {"values": list(range(total - created))}}},
        }).runs:
            metrics_log(run_id=run.id, points=[MetricPoint(key, 0, 1.0, 1.0) for key in ("loss", "acc", "lr")])
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/p/{project.id}/{query}")
        assert response.status_code == 200
        return len(captured), len(response.context["table"].rows)

    few, few_rows = queries_with(5)
    many, many_rows = queries_with(40)
    assert (few_rows, many_rows) == (5, 25)
    assert few == many, f"{few} queries for 5 runs, {many} for 40"
    assert many <= 10, many


def test_the_project_page_prefetches_plotly_for_the_charts_it_leads_to():
    from webapp.experiments.assets import PLOTLY_VERSION

    project = ProjectFactory()
    page = _client(project.owner_user).get(f"/p/{project.id}/").content.decode()
    assert f'<link rel="prefetch" href="/assets/plotly-gl2d-{PLOTLY_VERSION}.min.js">' in page
