"""/cluster/: admins see every worker, the whole queue and everyone's usage and quotas; users see their part."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from webapp.cluster import overview
from webapp.cluster.models import Quota
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import run_submit

from ..factories import ProjectFactory, UserFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    overview.reset_caches()
    yield
    overview.reset_caches()


@pytest.fixture
def cluster():
    """Two workers (one busy, one draining), alice's and bob's queued runs, a finished history."""
    WorkerFactory(name="gpu-box", cpu_slots=8, memory_mb=64 * 1024, gpus=[{"index": 0}, {"index": 1}])
    WorkerFactory(name="old-box", cpu_slots=4, draining=True, isolated=False)
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    alice_project = ProjectFactory(owner_user=alice, slug="vision")
    bob_project = ProjectFactory(owner_user=bob, slug="<b>nlp</b>")
    for _ in range(3):
        done = submit(alice_project)
        end = timezone.now() - timedelta(minutes=5)
        Run.objects.filter(id=done.id).update(state=RunState.SUCCEEDED, started_at=end - timedelta(minutes=12),
                                              finished_at=end)
    alice_runs = [submit(alice_project, name="alice-run") for _ in range(2)]
    bob_runs = [submit(bob_project, name="<script>alert(1)</script>") for _ in range(2)]
    Run.objects.filter(id=bob_runs[0].id).update(pending_reason="your quota: 1 of 1 run running")
    Quota.objects.create(user=bob, runs=1)
    return {"alice": alice, "bob": bob, "alice_runs": alice_runs, "bob_runs": bob_runs}


def submit(project, name: str = "run") -> Run:
    spec = {"name": name, "recipe": {"model": "mlp"}, "resources": {"cpus": 2, "max_minutes": 30}}
    return run_submit(user=project.owner_user, project=project, spec=spec).runs[0]


def page(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/cluster/")
    assert response.status_code == 200
    return response.content.decode()


def test_admin_sees_every_worker_the_whole_queue_and_everyones_usage(cluster):
    html = page(UserFactory(username="root", is_superuser=True, is_staff=True))

    assert "gpu-box" in html and "0 / 2" in html and "0 / 8" in html and "0 GB / 64 GB" in html
    assert "old-box" in html and "draining" in html and "not isolated" in html
    for run in cluster["alice_runs"] + cluster["bob_runs"]:
        assert f'href="/p/{run.project_id}/runs/{run.number}/"' in html
    assert "your quota: 1 of 1 run running" in html
    assert "about 12 min, median of 3 earlier runs of recipe mlp/digits" in html
    assert "user alice" in html and "user bob" in html and "Runs at once: 0 of 1" in html


def test_a_user_sees_the_workers_but_only_their_own_runs_and_share(cluster):
    html = page(cluster["alice"])

    assert "gpu-box" in html and "old-box" in html
    assert all(f'href="/p/{run.project_id}/runs/{run.number}/"' in html for run in cluster["alice_runs"])
    assert not any(f'href="/p/{run.project_id}/runs/{run.number}/"' in html for run in cluster["bob_runs"])
    assert "user alice" in html and "user bob" not in html and "your quota: 1 of 1" not in html


def test_names_are_escaped(cluster):
    html = page(UserFactory(is_superuser=True))

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>nlp</b>" not in html


def test_the_page_needs_a_sign_in(cluster):
    response = Client().get("/cluster/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_nav_links_to_it(cluster):
    assert 'href="/cluster/"' in page(cluster["alice"])


def test_queries_do_not_grow_with_the_queue(cluster, django_assert_max_num_queries):
    admin = UserFactory(is_superuser=True)
    client = Client()
    client.force_login(admin)
    client.get("/cluster/")  # warms the per-process usage and estimate caches, as a running server has them
    with django_assert_max_num_queries(14) as small:
        client.get("/cluster/")
    project = cluster["alice_runs"][0].project  # a project the estimates were read for (a new one costs one query)
    for _ in range(30):
        submit(project)
    WorkerFactory(name="extra", cpu_slots=2)
    Quota.objects.create(user=cluster["alice"], gpus=1)

    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get("/cluster/")
    assert len(re.findall(r'href="/p/\d+/runs/\d+/"', response.content.decode())) == 34
