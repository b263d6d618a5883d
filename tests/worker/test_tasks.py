"""The Celery task claims before it runs: a duplicate or late message does nothing."""

from __future__ import annotations

from webapp.experiments.models import RunEvent, RunState
from worker.tasks import execute_run


def test_a_message_delivered_twice_runs_the_job_once(submit_code, claimed, log_text):
    run = claimed(submit_code("print('ran once')"), start=False)
    assert execute_run(run.id, run.attempt, "w-test") == "succeeded"
    assert execute_run(run.id, run.attempt, "w-test") == "not claimed"
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and run.exit_code == 0
    assert log_text(run).count("ran once") == 1
    assert RunEvent.objects.filter(run=run, to_state=RunState.RUNNING).count() == 1


def test_a_message_for_an_old_attempt_or_another_worker_is_ignored(submit_code, claimed):
    run = claimed(submit_code("print('x')"), start=False)
    assert execute_run(run.id, run.attempt - 1, "w-test") == "not claimed"
    assert execute_run(run.id, run.attempt, "someone-else") == "misrouted"
    run.refresh_from_db()
    assert run.state == RunState.SCHEDULED


def test_a_failing_job_ends_failed_with_its_reason(submit_code, claimed):
    run = claimed(submit_code("raise SystemExit(3)"), start=False)
    assert execute_run(run.id, run.attempt, "w-test") == "failed"
    run.refresh_from_db()
    assert run.state == RunState.FAILED and run.exit_code == 3 and "exited with code 3" in run.failure_reason
