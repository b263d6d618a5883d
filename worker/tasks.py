"""The one Celery task: "run R, attempt A, on worker W". The database decides whether it happens.

A duplicate, late or misrouted message does nothing: the claim (scheduled -> running at
exactly attempt A, on this worker) is a compare-and-swap that only one delivery can win.

The attempts this process is executing are listed in `attempts_in_hand()`, and those it claimed
and has not finished recording in `attempts_started()`: the heartbeat hands back as lost an
attempt it started that the database says is running but no task holds (one whose end could not
be recorded because the database stayed away); a predecessor's attempts are start-up's to clean.

A multi-node run sends one message per node. Each worker claims its own `RunNode` (scheduled ->
running, compare-and-swap) and the first to start also moves the run scheduled -> running. A node
that fails fails the run (the others see it and stop their ranks) unless another node's worker was lost
first (`worker.gang_failure`: then the run is lost, not failed); a node that succeeds
waits for no one: the last node of the attempt to succeed, under the run's row lock, marks the run
succeeded. A node whose worker stops hands the run back as lost, and the whole gang is re-queued.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.dashboards.series import series_cache_warm
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import NodeState, Run, RunNode, RunState
from worker.celery_app import RUN_TASK
from worker.executor import execute
from worker.gang_failure import lost_peer_behind
from worker.limits import limits_for_run
from worker.outage import DatabaseGate, ResultsUnsaved
from worker.outcome import FAILED, INTERRUPTED, SUCCEEDED, Outcome

log = logging.getLogger("kiln.worker")
MAX_RUN_SECONDS = 7 * 24 * 3600  # the spec's largest max_minutes; the executor enforces the run's own
_in_hand: Counter[tuple[int, int]] = Counter()  # a count: a duplicate delivery must not drop the first's entry
_started: set[tuple[int, int]] = set()  # claimed by this process, end not yet recorded
_in_hand_lock = threading.Lock()


def attempts_in_hand() -> set[tuple[int, int]]:
    """(run, attempt) pairs this process is claiming, executing or recording right now."""
    with _in_hand_lock:
        return set(_in_hand)


def attempts_started() -> set[tuple[int, int]]:
    """(run, attempt) pairs this process claimed whose end it has not recorded (held, or left unrecorded)."""
    with _in_hand_lock:
        return set(_started)


def forget_attempt(run_id: int, attempt: int) -> None:
    """The attempt's end was recorded, or it was handed back: nothing of it is left to this process."""
    with _in_hand_lock:
        _started.discard((run_id, attempt))


@shared_task(name=RUN_TASK, acks_late=False, ignore_result=True, time_limit=MAX_RUN_SECONDS + 3600)
def execute_run(run_id: int, attempt: int, worker_name: str, node_rank: int = 0) -> str:
    """Claim the run (a multi-node run: this node of it), execute it, record how it ended.

    Returns a word for the worker's log."""
    if worker_name != settings.CONFIG.worker_name:
        log.warning("run %s attempt %s was sent to %s, not to me; ignored", run_id, attempt, worker_name)
        return "misrouted"
    if RunNode.objects.filter(run_id=run_id, attempt=attempt).exists():
        return _execute_node(run_id, attempt, worker_name, node_rank)
    if not Run.objects.filter(id=run_id, worker__name=worker_name).exists():
        return "not mine"
    with _in_hand_lock:
        _in_hand[(run_id, attempt)] += 1
    result = "error"
    try:
        result = _claim_and_execute(run_id, attempt, worker_name)
        return result
    finally:
        if result not in ("not claimed", "unsaved", "unrecorded", "error"):  # else a duplicate, or left to the heartbeat
            forget_attempt(run_id, attempt)
        with _in_hand_lock:
            _in_hand[(run_id, attempt)] -= 1
            if not _in_hand[(run_id, attempt)]:
                del _in_hand[(run_id, attempt)]


def _execute_node(run_id: int, attempt: int, worker_name: str, node_rank: int) -> str:
    """One node of a multi-node run: claim it, run its ranks, record its end (and the run's, see module doc)."""
    now = timezone.now()
    claimed = RunNode.objects.filter(run_id=run_id, attempt=attempt, node_rank=node_rank, worker_name=worker_name,
                                     state=NodeState.SCHEDULED).update(state=NodeState.RUNNING, started_at=now)
    if not claimed:
        log.info("run %s attempt %s node %s: already claimed or not mine; nothing to do", run_id, attempt, node_rank)
        return "not claimed"
    run_transition(run_id=run_id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING,
                   expected_attempt=attempt, reason=f"started on {worker_name} (node {node_rank})")
    if not Run.objects.filter(id=run_id, state=RunState.RUNNING, attempt=attempt).exists():
        _end_node(run_id, attempt, node_rank, NodeState.STOPPED, None, "the run was no longer running")
        return "not claimed"
    with _in_hand_lock:
        _in_hand[(run_id, attempt)] += 1
        _started.add((run_id, attempt))
    try:  # NOTE: held until its end is recorded, or the heartbeat would hand a finishing node back as lost
        outcome = _run_node(run_id, attempt, worker_name, node_rank)
        if outcome.state == FAILED:
            outcome = _unless_a_peer_was_lost(run_id, attempt, node_rank, outcome)
        try:
            DatabaseGate().insist(lambda: _record_node(run_id, attempt, node_rank, worker_name, outcome),
                                  patience=settings.CONFIG.worker_timeout_seconds,
                                  what=f"run {run_id} attempt {attempt} node {node_rank}: recording that it "
                                       f"{outcome.state}")
        except ResultsUnsaved:
            return "unrecorded"
    finally:
        with _in_hand_lock:
            _in_hand[(run_id, attempt)] -= 1
            if not _in_hand[(run_id, attempt)]:
                del _in_hand[(run_id, attempt)]
    forget_attempt(run_id, attempt)
    log.info("run %s attempt %s node %s: %s %s", run_id, attempt, node_rank, outcome.state, outcome.reason)
    return outcome.state


def _run_node(run_id: int, attempt: int, worker_name: str, node_rank: int) -> Outcome:
    config = settings.CONFIG
    run = Run.objects.get(id=run_id)
    try:
        return execute(run, attempt=attempt, worker_name=worker_name, data_dir=config.data_dir,
                       limits=limits_for_run(run.max_minutes, disk_bytes=config.run_disk_quota_bytes,
                                             memory_gb=run.memory_limit_gb),
                       db_patience=config.worker_timeout_seconds, node_rank=node_rank)
    except ResultsUnsaved as exc:
        log.error("run %s attempt %s node %s: %s", run_id, attempt, node_rank, exc)
        return Outcome(INTERRUPTED, reason=f"node {node_rank} could not store its results")
    except Exception as exc:
        log.exception("run %s attempt %s node %s: the worker failed while running it", run_id, attempt, node_rank)
        return Outcome(FAILED, reason=f"worker error: {type(exc).__name__}: {exc}")


def _unless_a_peer_was_lost(run_id: int, attempt: int, node_rank: int, outcome: Outcome) -> Outcome:
    """A failure that followed another node's loss is part of that loss: the gang is re-queued (see gang_failure)."""
    peer = lost_peer_behind(run_id, attempt, node_rank, timezone.now(),
                            worker_timeout_seconds=settings.CONFIG.worker_timeout_seconds)
    if peer is None:
        return outcome
    log.warning("run %s attempt %s node %s: %s after %s stopped answering; the gang is lost, not failed",
                run_id, attempt, node_rank, outcome.reason, peer)
    return Outcome(INTERRUPTED, exit_code=outcome.exit_code, reason=f"{peer} stopped answering ({outcome.reason})")


def _paused_attempt_ended(run_id: int, attempt: int, outcome: Outcome) -> bool:
    Run.objects.filter(id=run_id, attempt=attempt, state=RunState.PAUSED, exit_code__isnull=True).update(
        exit_code=outcome.exit_code if outcome.exit_code is not None else -1)
    return True


def _end_node(run_id: int, attempt: int, node_rank: int, state: str, exit_code: int | None, reason: str) -> None:
    RunNode.objects.filter(run_id=run_id, attempt=attempt, node_rank=node_rank).update(
        state=state, exit_code=exit_code, reason=reason[:500], finished_at=timezone.now())


def _record_node(run_id: int, attempt: int, node_rank: int, worker_name: str, outcome: Outcome) -> bool:
    """This node's end, and the run's when it decides it (a failure, a stop, or the last success)."""
    where = f"node {node_rank} on {worker_name}"
    with transaction.atomic():
        Run.objects.select_for_update().filter(id=run_id).values_list("id").first()  # orders the nodes' ends
        if node_rank == 0:  # rank 0 writes the checkpoints
            _paused_attempt_ended(run_id, attempt, outcome)
        if outcome.state == SUCCEEDED:
            _end_node(run_id, attempt, node_rank, NodeState.SUCCEEDED, 0, "exited with code 0")
            left = RunNode.objects.filter(run_id=run_id, attempt=attempt).exclude(state=NodeState.SUCCEEDED)
            if left.exists():
                return True
            return run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED,
                                  expected_attempt=attempt, reason="every node exited with code 0", exit_code=0)
        if outcome.state == FAILED:
            _end_node(run_id, attempt, node_rank, NodeState.FAILED, outcome.exit_code, outcome.reason)
            reason = f"{where}: {outcome.reason}"
            return run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.FAILED,
                                  expected_attempt=attempt, reason=reason, exit_code=outcome.exit_code,
                                  failure_reason=reason)
        _end_node(run_id, attempt, node_rank, NodeState.STOPPED, outcome.exit_code, outcome.reason)
        if outcome.state == INTERRUPTED:  # the whole gang goes back to the queue
            return run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.LOST,
                                  expected_attempt=attempt, reason=f"{where}: {outcome.reason}")
        return True


def _claim_and_execute(run_id: int, attempt: int, worker_name: str) -> str:
    claimed = run_transition(
        run_id=run_id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING,
        expected_attempt=attempt, reason=f"started on {worker_name}",
    )
    if not claimed:
        log.info("run %s attempt %s: already claimed, cancelled or re-queued; nothing to do", run_id, attempt)
        return "not claimed"
    with _in_hand_lock:
        _started.add((run_id, attempt))
    config = settings.CONFIG
    run = Run.objects.get(id=run_id)
    log.info("run %s attempt %s: running", run_id, attempt)
    try:
        outcome = execute(run, attempt=attempt, worker_name=worker_name, data_dir=config.data_dir,
                          limits=limits_for_run(run.max_minutes, disk_bytes=config.run_disk_quota_bytes,
                                                 memory_gb=run.memory_limit_gb),
                          db_patience=config.worker_timeout_seconds)
    except ResultsUnsaved as exc:
        log.error("run %s attempt %s: %s; it is handed back as lost once the database answers", run_id, attempt, exc)
        return "unsaved"
    except Exception as exc:
        log.exception("run %s attempt %s: the worker failed while running it", run_id, attempt)
        outcome = Outcome(FAILED, reason=f"worker error: {type(exc).__name__}: {exc}")
    try:
        _record(run_id, attempt, outcome, patience=config.worker_timeout_seconds)
    except ResultsUnsaved as exc:
        log.error("run %s attempt %s: %s; it is handed back as lost once the database answers", run_id, attempt, exc)
        return "unrecorded"
    log.info("run %s attempt %s: %s %s", run_id, attempt, outcome.state, outcome.reason)
    if outcome.state != INTERRUPTED:  # a stopping worker has no time to spare
        _warm_dashboards(run_id)
    return outcome.state


def _warm_dashboards(run_id: int) -> None:
    """Build any rollup the finished run lacks (series logged before rollups), so its compare view is fast."""
    try:
        series_cache_warm(run_id=run_id)
    except Exception:  # a cold cache only costs speed, never data
        log.exception("run %s: warming the dashboard cache failed", run_id)


def _record(run_id: int, attempt: int, outcome: Outcome, *, patience: float) -> None:
    """succeeded/failed, or lost when the worker stopped it, unless the run was cancelled or taken away meanwhile.

    A sweep trial paused at a rung gets its job's exit code once its last results are stored: only then may
    the sweep promote it (the next attempt resumes from the checkpoint this one stored last)."""
    DatabaseGate().insist(lambda: _paused_attempt_ended(run_id, attempt, outcome), patience=patience,
                          what=f"run {run_id} attempt {attempt}: recording that its paused job ended")
    if outcome.state not in (SUCCEEDED, FAILED, INTERRUPTED):
        return

    def transition() -> bool:
        if outcome.state == INTERRUPTED:  # the scheduler re-queues it; it resumes from its last checkpoint
            return run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.LOST,
                                  expected_attempt=attempt, reason=outcome.reason)
        if outcome.state == SUCCEEDED:
            return run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED,
                                  expected_attempt=attempt, reason="exited with code 0", exit_code=0)
        return run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.FAILED,
                              expected_attempt=attempt, reason=outcome.reason, exit_code=outcome.exit_code,
                              failure_reason=outcome.reason)

    DatabaseGate().insist(transition, patience=patience,
                          what=f"run {run_id} attempt {attempt}: recording that it {outcome.state}")
