"""The one Celery task: "run R, attempt A, on worker W". The database decides whether it happens.

A duplicate, late or misrouted message does nothing: the claim (scheduled -> running at
exactly attempt A, on this worker) is a compare-and-swap that only one delivery can win.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from webapp.dashboards.series import series_cache_warm
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run, RunState
from worker.celery_app import RUN_TASK
from worker.executor import execute
from worker.outcome import FAILED, SUCCEEDED, Outcome

log = logging.getLogger("kiln.worker")
MAX_RUN_SECONDS = 7 * 24 * 3600  # the spec's largest max_minutes; the executor enforces the run's own


@shared_task(name=RUN_TASK, acks_late=True, ignore_result=True, time_limit=MAX_RUN_SECONDS + 3600)
def execute_run(run_id: int, attempt: int, worker_name: str) -> str:
    """Claim the run, execute it, record how it ended. Returns a word for the worker's log."""
    if worker_name != settings.CONFIG.worker_name:
        log.warning("run %s attempt %s was sent to %s, not to me; ignored", run_id, attempt, worker_name)
        return "misrouted"
    if not Run.objects.filter(id=run_id, worker__name=worker_name).exists():
        return "not mine"
    claimed = run_transition(
        run_id=run_id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING,
        expected_attempt=attempt, reason=f"started on {worker_name}",
    )
    if not claimed:
        log.info("run %s attempt %s: already claimed, cancelled or re-queued; nothing to do", run_id, attempt)
        return "not claimed"
    run = Run.objects.get(id=run_id)
    log.info("run %s attempt %s: running", run_id, attempt)
    try:
        outcome = execute(run, attempt=attempt, worker_name=worker_name, data_dir=settings.CONFIG.data_dir)
    except Exception as exc:
        log.exception("run %s attempt %s: the worker failed while running it", run_id, attempt)
        outcome = Outcome(FAILED, reason=f"worker error: {type(exc).__name__}: {exc}")
    _record(run_id, attempt, outcome)
    log.info("run %s attempt %s: %s %s", run_id, attempt, outcome.state, outcome.reason)
    _warm_dashboards(run_id)
    return outcome.state


def _warm_dashboards(run_id: int) -> None:
    """Cache the finished run's downsampled series, so its first compare view is fast."""
    try:
        series_cache_warm(run_id=run_id)
    except Exception:  # a cold cache only costs speed, never data
        log.exception("run %s: warming the dashboard cache failed", run_id)


def _record(run_id: int, attempt: int, outcome: Outcome) -> None:
    """succeeded/failed, unless the run was cancelled or taken away meanwhile (then the claim fails)."""
    if outcome.state == SUCCEEDED:
        run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED,
                       expected_attempt=attempt, reason="exited with code 0", exit_code=0)
    elif outcome.state == FAILED:
        run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.FAILED,
                       expected_attempt=attempt, reason=outcome.reason, exit_code=outcome.exit_code,
                       failure_reason=outcome.reason)
