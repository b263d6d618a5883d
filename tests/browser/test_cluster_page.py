"""The cluster page in Chromium: an admin sees the whole queue and every share; a user sees their own runs and share."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from webapp.cluster import overview
from webapp.cluster.models import Quota, Worker
from webapp.experiments.models import Run
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "browser-test-pw"


@pytest.fixture
def queue():
    from django.utils import timezone

    overview.reset_caches()
    users = get_user_model().objects
    admin = users.create_superuser(username="root", password=PASSWORD, email="")
    alice = users.create_user(username="alice", password=PASSWORD)
    bob = users.create_user(username="bob", password=PASSWORD)
    now = timezone.now()
    Worker.objects.create(name="cpu-box", hostname="h", queue="q", cpu_slots=2, memory_mb=8192, started_at=now,
                          heartbeat_at=now, isolated=True)
    Quota.objects.create(user=bob, runs=1)
    runs = {}
    for user in (alice, bob):
        project = Project.objects.create(slug="p", name="P", owner_user=user)
        spec = {"name": f"{user.username}-run", "recipe": {"model": "mlp"}, "resources": {"cpus": 2}}
        runs[user.username] = [run_submit(user=user, project=project, spec=spec).runs[0] for _ in range(2)]
    Run.objects.filter(id=runs["bob"][1].id).update(pending_reason="your quota: 1 of 1 run running")
    yield {"admin": admin, "runs": runs}
    overview.reset_caches()


def test_admin_and_user_read_the_cluster_page(live_server, page, new_page, login, queue, screenshot):
    login(page, "root", PASSWORD)
    page.click("nav.main-nav >> text=Cluster")
    page.wait_for_selector("#cluster-workers")

    assert page.locator("#cluster-workers tbody tr").count() == 1
    assert "cpu-box" in page.inner_text("#cluster-workers") and "0 / 2" in page.inner_text("#cluster-workers")
    queue_text = page.inner_text("#cluster-queue")
    assert page.locator("#cluster-queue tbody tr").count() == 4
    assert "alice-run" in queue_text and "bob-run" in queue_text and "your quota: 1 of 1 run running" in queue_text
    shares = page.inner_text("#cluster-shares")
    assert "user alice" in shares and "user bob" in shares and "Runs at once: 0 of 1" in shares
    screenshot(page, "cluster-admin")

    as_alice = new_page()
    login(as_alice, "alice", PASSWORD)
    as_alice.goto(live_server.url + "/cluster/")
    assert "cpu-box" in as_alice.inner_text("#cluster-workers")
    assert as_alice.locator("#cluster-queue tbody tr").count() == 2
    assert "bob" not in as_alice.inner_text("#cluster-queue") and "bob" not in as_alice.inner_text("#cluster-shares")
    assert "user alice" in as_alice.inner_text("#cluster-shares")
    as_alice.click("#cluster-queue tbody tr >> nth=0 >> a")
    first = queue["runs"]["alice"][0]
    as_alice.wait_for_url(f"**/p/{first.project_id}/runs/{first.number}/")  # the page's own address, no redirect
