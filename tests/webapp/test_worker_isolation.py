"""What each worker's start-up canary found is shown: /healthz, the admin, GET /api/workers, and the
warning banner on every page while KILN_ALLOW_UNISOLATED_CODE is set."""

from __future__ import annotations

import pytest
from django.urls import reverse

from webapp.accounts.tokens import token_create
from webapp.cluster.services import worker_record_isolation, worker_register

from .api.conftest import Api
from .factories import UserFactory

pytestmark = pytest.mark.django_db

HELD = {"checked_at": "2026-01-01T00:00:00+00:00", "sandbox": "sandbox: bubblewrap", "summary": "isolated: 2 of 2 checks held",
        "checks": [{"name": "sees only its own processes", "held": True, "detail": "its /proc shows only the sandbox's own"},
                   {"name": "cannot reach database", "held": True, "detail": "127.0.0.1:5432: refused"}]}
FAILED = {**HELD, "summary": "NOT isolated: 1 of 2 checks failed: cannot reach database",
          "checks": [HELD["checks"][0], {"name": "cannot reach database", "held": False, "detail": "127.0.0.1:5432: connected"}]}


def _workers() -> None:
    for name, isolation in (("gpu-a", HELD), ("cpu-b", FAILED)):
        worker = worker_register(name=name, hostname="host", queue=f"kiln.worker.{name}", cpu_slots=2, gpus=[])
        worker_record_isolation(worker_id=worker.id, isolation=isolation)


def test_healthz_gives_each_workers_isolation_summary(client):
    _workers()
    workers = client.get("/healthz").json()["workers"]
    assert workers["isolation"] == {"cpu-b": {"isolated": False, "summary": FAILED["summary"]},
                                    "gpu-a": {"isolated": True, "summary": HELD["summary"]}}
    assert workers["unisolated_code_allowed"] is False


def test_the_admin_lists_isolation_and_shows_the_checks_read_only(admin_client):
    _workers()
    listing = admin_client.get(reverse("admin:cluster_worker_changelist")).content.decode()
    assert FAILED["summary"] in listing and HELD["summary"] in listing
    from webapp.cluster.models import Worker

    page = admin_client.get(reverse("admin:cluster_worker_change", args=[Worker.objects.get(name="cpu-b").id]))
    text = page.content.decode()
    assert "127.0.0.1:5432: connected" in text
    assert 'name="isolated"' not in text and 'name="isolation"' not in text  # shown, not editable


def test_api_workers_lists_state_isolation_and_restarts_to_signed_in_users():
    _workers()
    token = token_create(user=UserFactory(), name="t")[1]
    response = Api(token).get("/api/workers")
    assert response.status_code == 200
    rows = {w["name"]: w for w in response.json()}
    assert rows["gpu-a"]["isolated"] is True and rows["gpu-a"]["state"] == "online"
    assert rows["cpu-b"]["isolated"] is False and rows["cpu-b"]["isolation_summary"] == FAILED["summary"]
    assert rows["cpu-b"]["isolation"]["checks"][1] == {"name": "cannot reach database", "held": False, "detail": ""}
    assert {"draining", "restarts", "last_error"} <= set(rows["cpu-b"])
    assert Api().get("/api/workers").status_code == 401
    staff = token_create(user=UserFactory(is_staff=True), name="t")[1]
    details = {w["name"]: w for w in Api(staff).get("/api/workers").json()}["cpu-b"]["isolation"]["checks"][1]
    assert details["detail"] == "127.0.0.1:5432: connected"  # addresses and paths: for the admins


def test_every_page_warns_while_unisolated_code_is_allowed(client, kiln_config):
    login = reverse("login")
    assert "Code runs are not isolated" not in client.get(login).content.decode()
    kiln_config(allow_unisolated_code=True)
    assert "Code runs are not isolated" in client.get(login).content.decode()
    assert client.get("/healthz").json()["workers"]["unisolated_code_allowed"] is True


def test_kiln_run_says_in_one_line_how_to_get_isolated_code_runs(kiln_config, capsys):
    from webapp.client import cli

    cli._isolation_hint(kiln_config(bwrap="none"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "apt install bubblewrap" in lines[0] and "KILN_ALLOW_UNISOLATED_CODE=1" in lines[0]
