"""/healthz tells the truth about the database, the broker and the workers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from webapp.cluster.services import worker_heartbeat, worker_register, worker_sign_off

pytestmark = pytest.mark.django_db


def _register(name="w1"):
    return worker_register(name=name, hostname="host", queue=f"kiln.worker.{name}", cpu_slots=2, gpus=[])


def test_healthz_reports_database_broker_and_no_workers(client, tmp_path, kiln_config):
    (tmp_path / "broker" / "queue").mkdir(parents=True)
    kiln_config(data_dir=tmp_path, redis_url=None)
    body = client.get("/healthz").json()
    assert body["database"]["ok"] is True
    assert body["broker"] == {"ok": True, "transport": "filesystem"}
    assert body["workers"] == {"ok": False, "online": 0, "names": [], "isolation": {}, "unisolated_code_allowed": False}
    assert body["status"] == "degraded"


def test_healthz_is_ok_with_redis_and_a_live_worker(client, redis_url, kiln_config):
    kiln_config(redis_url=redis_url)
    _register()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["broker"] == {"ok": True, "transport": "redis"}
    assert body["workers"]["names"] == ["w1"]
    assert body["status"] == "ok"


def test_healthz_reports_the_broker_down_when_redis_does_not_answer(client, kiln_config, free_port):
    kiln_config(redis_url=f"redis://127.0.0.1:{free_port}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["broker"]["ok"] is False and body["broker"]["transport"] == "redis"
    assert "Error" in body["broker"]["error"]
    assert body["status"] == "degraded"


def test_missing_filesystem_broker_folder_is_reported_down(client, tmp_path, kiln_config):
    kiln_config(data_dir=tmp_path / "nowhere", redis_url=None)
    assert client.get("/healthz").json()["broker"]["ok"] is False


def test_worker_without_recent_heartbeat_is_not_online(client, kiln_config):
    worker = _register()
    stale = timezone.now() - timedelta(seconds=kiln_config().worker_timeout_seconds + 5)
    type(worker).objects.filter(id=worker.id).update(heartbeat_at=stale)
    assert client.get("/healthz").json()["workers"]["online"] == 0
    assert worker_heartbeat(worker_id=worker.id) is True
    assert client.get("/healthz").json()["workers"]["online"] == 1


def test_signed_off_worker_is_not_online_and_its_heartbeat_is_refused(client):
    worker = _register()
    worker_sign_off(worker_id=worker.id)
    assert worker_heartbeat(worker_id=worker.id) is False
    assert client.get("/healthz").json()["workers"]["online"] == 0


def test_healthz_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
