"""Outages of the services a cluster leans on: Redis restarting, the database going away.

One module cluster: a scheduler and a worker on a private redis-server that the tests crash
and restart; the worker reaches PostgreSQL through a proxy that the tests cut.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest
from cluster import (
    Cluster,
    database_url_for,
    job_processes,
    postgres_url,
    running_cluster,
    through_proxy,
    wait_for,
)
from django.db import connection
from django.test import Client
from factories import ProjectFactory
from redis_server import RedisServer
from services import require
from tcp_proxy import TcpProxy

from webapp import cache as shared_cache
from webapp import ratelimit
from webapp.accounts.tokens import token_create
from webapp.experiments.models import Run, RunState

pytestmark = pytest.mark.slow
ENDED = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.LOST)

TICKING = """
    import time
    from engine import track
    steps = int(track.config["steps"])
    for step in range(steps):
        track.log({"loss": 1.0 / (step + 1)}, step=step)
        time.sleep(float(track.config["sleep"]))
    print("logged", steps, "steps")
"""


@dataclass
class Outages:
    cluster: Cluster
    redis: RedisServer
    proxy: TcpProxy


@pytest.fixture(scope="module")
def outages(django_db_setup, django_db_blocker, tmp_path_factory):
    base_url = postgres_url()
    require(shutil.which("redis-server") is not None, "redis-server is not installed (apt-get install redis-server)")
    folder = tmp_path_factory.mktemp("kiln-outages")
    redis = RedisServer(folder / "redis")
    server = urlparse(base_url)
    proxy = TcpProxy((server.hostname or "127.0.0.1", server.port or 5432))
    patient = {"KILN_WORKER_TIMEOUT": "20"}  # the outages below are shorter: no run is given up as lost
    try:
        redis.start()
        proxy.start()
        worker_db = through_proxy(database_url_for(connection.settings_dict["NAME"], base_url), proxy.port)
        role_env = {"scheduler": patient, "worker": {**patient, "DATABASE_URL": worker_db}}
        with running_cluster(django_db_blocker, folder, redis.url, role_env) as stack:
            yield Outages(stack, redis, proxy)
    finally:
        proxy.close()
        redis.crash()


@pytest.fixture
def outage(outages, transactional_db):
    outages.cluster.project = ProjectFactory()
    outages.cluster.wait_workers()
    return outages


def _steps_stored(run: Run) -> int:
    return run.metrics.filter(key="loss").count()


def _steps(run: Run) -> list[int]:
    return list(run.metrics.filter(key="loss").order_by("step").values_list("step", flat=True))


@pytest.mark.parametrize("keep_data", [True, False], ids=["crash-with-appendonly", "restart-empty"])
def test_redis_restarted_mid_run_loses_no_metric_and_the_worker_keeps_serving(outage, keep_data):
    kiln = outage.cluster
    run = kiln.wait_state(kiln.submit(TICKING, params={"steps": 60, "sleep": 0.1}), (RunState.RUNNING,), 30)
    wait_for(lambda: _steps_stored(run) >= 5, 30, "no metric before the restart", kiln.logs)
    outage.redis.crash()
    if not keep_data:
        outage.redis.wipe()
    during = kiln.submit("print('submitted while the broker was down')")
    time.sleep(2.0)
    outage.redis.start()
    assert Run.objects.get(id=run.id).state == RunState.RUNNING and _steps_stored(run) < 60  # mid-run
    run = kiln.wait_state(run, ENDED, 60)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
    assert _steps(run) == list(range(60))  # every step, each once
    # Rung again at the next tick once the broker answers, not only after the 30 s re-send.
    during = kiln.wait_state(during, ENDED, 20)
    assert during.state == RunState.SUCCEEDED, kiln._run_story(during)
    after = kiln.wait_state(kiln.submit("print('submitted after the restart')"), ENDED, 60)
    assert after.state == RunState.SUCCEEDED, kiln._run_story(after)


def test_while_redis_is_down_api_reads_and_writes_succeed_and_running_runs_keep_reporting(
        outage, settings, kiln_config, monkeypatch):
    kiln = outage.cluster
    settings.CACHES = {"default": {"BACKEND": "webapp.cache.ResilientRedisCache", "LOCATION": outage.redis.url,
                                   "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}}}
    kiln_config(redis_url=outage.redis.url)
    for module in (shared_cache, ratelimit):  # this test's own outage, logged in this process
        monkeypatch.setattr(module, "SHARED_CACHE", shared_cache.CacheOutage())
    api = {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=kiln.project.owner_user, name='outage')[1]}"}
    client = Client()
    run = kiln.wait_state(kiln.submit(TICKING, params={"steps": 60, "sleep": 0.1}), (RunState.RUNNING,), 30)
    wait_for(lambda: _steps_stored(run) >= 5, 30, "no metric before the outage", kiln.logs)
    outage.redis.crash()
    try:
        before = _steps_stored(run)
        assert client.get(f"/api/runs/{run.id}", **api).status_code == 200
        assert client.get("/api/projects", **api).status_code == 200
        created = client.post("/api/runs", json.dumps({"project": kiln.project.id, "spec": {"recipe": {"model": "mlp"}}}),
                              content_type="application/json", **api)
        assert created.status_code == 201, created.content
        cancelled = client.post(f"/api/runs/{created.json()['runs'][0]['id']}/cancel", **api)
        assert cancelled.status_code == 200, cancelled.content
        wait_for(lambda: _steps_stored(run) > before + 5, 20, "the running run stopped reporting", kiln.logs)
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
    finally:
        outage.redis.start()
    run = kiln.wait_state(run, ENDED, 60)
    assert run.state == RunState.SUCCEEDED and _steps(run) == list(range(60)), kiln._run_story(run)


def test_a_job_ending_while_the_database_is_away_ends_succeeded_with_every_metric(outage):
    kiln = outage.cluster
    run = kiln.wait_state(kiln.submit(TICKING, params={"steps": 30, "sleep": 0.1}), (RunState.RUNNING,), 30)
    wait_for(lambda: _steps_stored(run) >= 5, 30, "no metric before the outage", kiln.logs)
    outage.proxy.cut()
    try:
        wait_for(lambda: not job_processes(run.id), 20, "the job did not end during the outage", kiln.logs)
        time.sleep(1.0)  # the worker retries its final flush meanwhile
        assert Run.objects.get(id=run.id).state == RunState.RUNNING
        assert _steps_stored(run) < 30
        assert (kiln.data_dir / "runs" / str(run.id) / "1" / ".kiln-events.jsonl").exists()  # kept while retrying
    finally:
        outage.proxy.restore()
    run = kiln.wait_state(run, ENDED, 60)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
    assert _steps(run) == list(range(30))
    text = "\n".join(run.log_lines.order_by("seq").values_list("text", flat=True))
    assert "database unreachable" in text and "logged 30 steps" in text
    after = kiln.wait_state(kiln.submit("print('served after the outage')"), ENDED, 60)
    assert after.state == RunState.SUCCEEDED, kiln._run_story(after)
