"""Run state transitions: each one a compare-and-swap UPDATE plus its RunEvent, in one place."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from webapp.experiments.models import Run, RunEvent, RunState

S = RunState
ALLOWED: dict[str, set[str]] = {
    S.QUEUED: {S.SCHEDULED, S.CANCELLED, S.FAILED},
    S.SCHEDULED: {S.RUNNING, S.QUEUED, S.CANCELLED, S.LOST, S.FAILED},
    S.RUNNING: {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.LOST, S.STOPPED_EARLY, S.PAUSED},
    S.LOST: {S.QUEUED, S.FAILED, S.CANCELLED},
    S.PAUSED: {S.QUEUED, S.STOPPED_EARLY, S.CANCELLED},  # promoted (a new attempt resumes), or never
    S.SUCCEEDED: set(),
    S.FAILED: set(),
    S.CANCELLED: set(),
    S.STOPPED_EARLY: set(),
}
_TIMESTAMP_ON_ENTER: dict[str, str] = {S.SCHEDULED: "scheduled_at", S.RUNNING: "started_at"}
_FINAL = {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.STOPPED_EARLY}
# NOTE: a pause stamps finished_at too, so fair share charges the attempt that ran (its promotion clears it)
_ENDS_ATTEMPT = _FINAL | {S.PAUSED}


class TransitionError(ValueError):
    """A transition the lifecycle never allows (a programming error, not a lost race)."""


def run_transition(
    *,
    run_id: int,
    from_states: tuple[str, ...],
    to_state: str,
    reason: str = "",
    expected_attempt: int | None = None,
    new_attempt: bool = False,
    **fields: Any,
) -> bool:
    """Move a run from one of `from_states` to `to_state` if it is still there.

    Returns False when another actor got there first (the UPDATE matched no row): the
    caller then does nothing. `expected_attempt` pins the attempt number, so a late
    message about an old attempt can never move the current one; `new_attempt` starts
    the next attempt.
    """
    for state in from_states:
        if to_state not in ALLOWED[state]:
            raise TransitionError(f"a run never goes from {state} to {to_state}")
    now = timezone.now()
    changes: dict[str, Any] = {"state": to_state, "updated_at": now, **fields}
    if to_state in _TIMESTAMP_ON_ENTER:
        changes[_TIMESTAMP_ON_ENTER[to_state]] = now
    if to_state in _ENDS_ATTEMPT:
        changes.setdefault("finished_at", now)
        changes.setdefault("pending_reason", "")
    if to_state == S.RUNNING:
        changes["pending_reason"] = ""
    filters: dict[str, Any] = {"id": run_id, "state__in": from_states}
    if expected_attempt is not None:
        filters["attempt"] = expected_attempt
    with transaction.atomic():
        row = Run.objects.filter(**filters).values("state", "attempt").first()
        if row is None:
            return False
        attempt = row["attempt"] + 1 if new_attempt else row["attempt"]
        # NOTE: the UPDATE re-checks state and attempt, so of two racing callers exactly one wins.
        updated = (
            Run.objects.filter(id=run_id, state=row["state"], attempt=row["attempt"])
            .update(**changes, attempt=attempt)
        )
        if not updated:
            return False
        RunEvent.objects.create(
            run_id=run_id, from_state=row["state"], to_state=to_state, attempt=attempt, reason=reason[:500]
        )
    return True


def run_claim_attempt(*, run_id: int, worker_id: int, gpu_indices: list[int], reason: str = "") -> bool:
    """queued -> scheduled on a worker, starting a new attempt (the scheduler's claim)."""
    return run_transition(
        run_id=run_id,
        from_states=(S.QUEUED,),
        to_state=S.SCHEDULED,
        reason=reason,
        worker_id=worker_id,
        gpu_indices=gpu_indices,
        new_attempt=True,
    )


def run_cancel(*, user: Any, run: Run) -> bool:
    """Cancel a run that has not finished; its worker stops the process within seconds."""
    from webapp.projects.permissions import Access, require_access

    require_access(user, run.project, Access.EDIT)
    if run.state in _FINAL:
        return False
    return run_transition(
        run_id=run.id,
        from_states=(S.QUEUED, S.SCHEDULED, S.RUNNING, S.LOST, S.PAUSED),
        to_state=S.CANCELLED,
        reason=f"cancelled by {user.get_username()}",
    )


def run_delete(*, user: Any, run: Run) -> None:
    """Delete a finished run with its metrics, logs and artifact files (needs edit access).

    An active run is refused (cancel it first); stored code is shared by content and stays.
    """
    from django.core.exceptions import ValidationError
    from django.core.files.storage import default_storage

    from webapp.experiments.models import Artifact
    from webapp.projects.permissions import Access, require_access

    require_access(user, run.project, Access.EDIT)
    if run.state not in _FINAL:
        raise ValidationError({"state": f"Run is {run.state}; only a finished run can be deleted (cancel it first)."})
    paths = list(Artifact.objects.filter(run_id=run.id).values_list("storage_path", flat=True))
    with transaction.atomic():
        Run.objects.filter(id=run.id, state__in=_FINAL).delete()
    for path in paths:
        default_storage.delete(path)
