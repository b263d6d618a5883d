"""Claim placed runs (compare-and-swap) and ring their worker's doorbell once the claim commits.

A message can be lost (a broker restart, a worker that died before taking it). Runs still
`scheduled` after `resend_after` seconds get their message again; that is safe because the
worker's claim is a compare-and-swap on (run, attempt), so at most one delivery runs. A send
that fails (the broker is down) leaves the claim standing and is tried again every tick.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from celery import Celery
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from scheduler.policy import Assignment
from webapp.cluster.models import Worker
from webapp.experiments.lifecycle import run_claim_attempt
from webapp.experiments.models import Run, RunState
from worker.celery_app import send_run

log = logging.getLogger("kiln.scheduler")


class Dispatcher:
    def __init__(self, app: Celery, *, resend_after: float):
        self.app = app
        self.resend_after = resend_after
        self._sent: dict[tuple[int, int], float] = {}  # (run, attempt) -> monotonic time last sent
        self._unsent: set[tuple[int, int]] = set()  # sends that failed: tried again at the next tick

    def start(self, assignments: Sequence[Assignment], workers: dict[str, Worker]) -> int:
        """Claim each assignment and send its message after commit; returns how many were claimed."""
        started = 0
        for assignment in assignments:
            worker = workers[assignment.worker]
            with transaction.atomic():
                if not _lock_if_taking_runs(worker.id):
                    continue  # it started draining after the pass read it: the next tick places the run elsewhere
                if not run_claim_attempt(run_id=assignment.run_id, worker_id=worker.id,
                                         gpu_indices=list(assignment.gpu_indices),
                                         reason=f"placed on {worker.name}"):
                    continue  # cancelled or claimed meanwhile
                attempt = Run.objects.filter(id=assignment.run_id).values_list("attempt", flat=True).get()
                transaction.on_commit(functools.partial(self._send, assignment.run_id, attempt, worker.name))
            started += 1
        return started

    def resend_stuck(self, online: dict[str, Worker]) -> int:
        """Send again the messages of runs scheduled on a live worker for too long, or whose send failed."""
        cutoff = timezone.now() - timedelta(seconds=self.resend_after)
        stuck = list(
            Run.objects.filter(state=RunState.SCHEDULED, worker__name__in=list(online))
            .filter(Q(scheduled_at__lt=cutoff) | Q(id__in=[run_id for run_id, _ in self._unsent]))
            .values_list("id", "attempt", "worker__name")
        )
        self._unsent &= {(run_id, attempt) for run_id, attempt, _ in stuck}  # the others moved on
        resent = 0
        for run_id, attempt, worker_name in stuck:
            unsent = (run_id, attempt) in self._unsent
            if not unsent and time.monotonic() - self._sent.get((run_id, attempt), 0.0) < self.resend_after:
                continue
            if not unsent:
                log.warning("run %s attempt %s still scheduled on %s: sending its message again",
                            run_id, attempt, worker_name)
            if not self._send(run_id, attempt, worker_name):
                break  # the broker is still away: the rest wait for the next tick
            resent += 1
        return resent

    def _send(self, run_id: int, attempt: int, worker_name: str) -> bool:
        self._sent[(run_id, attempt)] = time.monotonic()
        if len(self._sent) > 10_000:
            self._sent = dict(list(self._sent.items())[-5_000:])
        try:
            send_run(self.app, run_id=run_id, attempt=attempt, worker_name=worker_name)
        except Exception as exc:  # the claim stands; only the doorbell waits for the broker
            if (run_id, attempt) not in self._unsent:
                log.warning("run %s attempt %s: the broker refused its message (%s); trying again each tick",
                            run_id, attempt, exc)
            self._unsent.add((run_id, attempt))
            return False
        if self._unsent:
            self._unsent.discard((run_id, attempt))
        return True


def _lock_if_taking_runs(worker_id: int) -> bool:
    """Lock the worker's row until the claim commits, if it is not draining.

    `worker_drain` then waits for the claim, and the stopping worker hands the run back with the rest.
    """
    return bool(Worker.objects.select_for_update().filter(id=worker_id, draining=False).values_list("id"))
