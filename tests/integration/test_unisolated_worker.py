"""A worker whose sandbox cannot isolate jobs (KILN_BWRAP=none: a machine without bubblewrap) says so at
start-up, and code runs do not run there (they wait with "no isolated worker", or fail with it) unless
KILN_ALLOW_UNISOLATED_CODE is set; built-in recipe runs run anyway."""

from __future__ import annotations

import time

import pytest
from cluster import running_cluster, wait_for

from webapp.cluster.models import Worker
from webapp.experiments.models import RunState
from webapp.experiments.submit import run_submit
from worker.canary import NOT_ISOLATED

pytestmark = pytest.mark.slow
UNISOLATED = {"KILN_BWRAP": "none", "KILN_ALLOW_UNISOLATED_CODE": "0"}


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    """This module's own cluster: its worker has no bubblewrap, and nobody opted out."""
    role_env = {"worker": dict(UNISOLATED), "scheduler": {"KILN_ALLOW_UNISOLATED_CODE": "0"}}
    with running_cluster(django_db_blocker, tmp_path_factory.mktemp("kiln-unisolated"), None, role_env) as stack:
        yield stack


def _isolation(kiln) -> Worker:
    wait_for(lambda: Worker.objects.filter(stopped_at__isnull=True).exclude(isolation={}).exists(), 30,
             "the worker never recorded its isolation", kiln.logs)
    return Worker.objects.get(stopped_at__isnull=True)


def test_code_runs_are_refused_where_isolation_fails_and_run_once_opted_out(kiln, tmp_path):
    worker = _isolation(kiln)
    assert worker.isolated is False and worker.isolation["summary"].startswith("NOT isolated")
    marker = tmp_path / "ran"
    run = kiln.submit(f"print('I ran')\nopen({str(marker)!r}, 'w').write('ran')\n")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # long enough for several scheduler ticks and a delivery
        run.refresh_from_db()
        assert run.state != RunState.SUCCEEDED, kiln._run_story(run)
        if run.state == RunState.FAILED:
            break
        time.sleep(0.25)
    assert run.state in (RunState.QUEUED, RunState.FAILED), kiln._run_story(run)
    reason = run.failure_reason if run.state == RunState.FAILED else run.pending_reason
    assert NOT_ISOLATED in reason, kiln._run_story(run)
    assert not marker.exists()

    kiln.stop_all()  # the admin of a single-user machine opts out, and starts Kiln again
    kiln.role_env = {"worker": {**UNISOLATED, "KILN_ALLOW_UNISOLATED_CODE": "1"},
                     "scheduler": {"KILN_ALLOW_UNISOLATED_CODE": "1"}}
    kiln.start("scheduler")
    kiln.start("worker")
    later = kiln.wait_state(kiln.submit("print('opted out')\n"), (RunState.SUCCEEDED, RunState.FAILED), 60)
    assert later.state == RunState.SUCCEEDED, kiln._run_story(later)
    text = "\n".join(later.log_lines.order_by("seq").values_list("text", flat=True))
    assert "opted out" in text and "this job is NOT isolated" in text


def test_a_recipe_run_runs_on_a_worker_that_cannot_isolate(kiln):
    assert _isolation(kiln).isolated is False
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": 1, "batch_size": 32, "hidden_size": 8}}
    run = run_submit(user=kiln.project.owner_user, project=kiln.project, spec=spec).runs[0]
    run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED), 90)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
