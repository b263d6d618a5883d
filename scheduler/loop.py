"""`kiln scheduler`: the tick loop that applies the placement policy to the database.

Each tick:
  1. runs of workers that stopped heartbeating become `lost`, then are re-queued while
     attempts remain (resuming from their last checkpoint) or failed (`scheduler.recovery`);
  2. the pure policy (`scheduler.policy.plan_pass`) places queued runs on online workers;
     each placement is claimed with a compare-and-swap and its message is sent to the
     worker's own queue after commit; waiting runs get their pending reason;
  3. runs stuck in `scheduled` (their message was lost) get their message again;
  4. controlled sweeps make trials as slots free and stop weak ones early (`scheduler.sweeps`),
     before placement, so a new trial is placed in the same tick; its runs then queue like any run;
  5. hourly, runs and projects the MLflow API soft-deleted past KILN_DELETED_RETENTION_DAYS are
     purged for good (`webapp.experiments.soft_delete`).
Between ticks the loop watches the RunEvent table: any transition (a submit, a cancel, a
run ending) starts the next tick at once, so a new run is placed within ~0.2 s.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Mapping

from celery import Celery
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Max

from scheduler import inventory
from scheduler.accounting import DurationHistory, UsageLedger, policy_quotas, with_admin_quotas
from scheduler.dispatch import Dispatcher
from scheduler.policy import ClusterCapacity, PolicyConfig, plan_pass
from scheduler.recovery import mark_lost, requeue_lost
from scheduler.sweeps.controller import sweeps_tick
from webapp.cluster.selectors import workers_online
from webapp.experiments.models import Run, RunEvent, RunState
from webapp.experiments.soft_delete import deleted_purge
from webapp.health.checks import check_broker, check_database
from worker.celery_app import make_celery_app

log = logging.getLogger("kiln.scheduler")
WAKE_POLL_SECONDS = 0.2
RESEND_AFTER_SECONDS = 30.0
PURGE_EVERY_SECONDS = 3600.0


class Scheduler:
    """One tick's work; kept as an object so the dispatcher remembers what it sent."""

    def __init__(self, *, app: Celery | None = None, policy: PolicyConfig | None = None,
                 resend_after: float = RESEND_AFTER_SECONDS):
        self.policy = policy or PolicyConfig()
        self.dispatcher = Dispatcher(app or make_celery_app(), resend_after=resend_after)
        self.usage = UsageLedger()  # finished runs are read once, then only the newly finished each tick
        self.durations = DurationHistory()  # run-time estimates, read at most every 30 s
        self.purge_due = 0.0  # monotonic time of the next purge of soft-deleted rows (the first tick purges)

    def tick(self) -> dict[str, int]:
        """Recover, place, re-send; returns counts for the log."""
        lost = mark_lost(settings.CONFIG.worker_timeout_seconds)
        requeued = requeue_lost()
        swept = sweeps_tick()
        online = {worker.name: worker for worker in workers_online()}
        queued = inventory.queued_runs(self.durations)
        started = 0
        if queued:
            now = time.time()
            states = inventory.worker_states(list(online.values()), self.durations)
            config = with_admin_quotas(self.policy, policy_quotas())
            usage = self.usage.totals(config, now, ClusterCapacity.of(states),
                                      week_gpu_seconds=config.quotas.counts_gpu_hours)
            plan = plan_pass(queued=queued, workers=states, usage=usage, config=config, now=now)
            started = self.dispatcher.start(plan.assignments, online)
            _set_pending_reasons(plan.pending_reasons)
        resent = self.dispatcher.resend_stuck(online)
        purged = 0
        if time.monotonic() >= self.purge_due:
            purged = deleted_purge()
            self.purge_due = time.monotonic() + PURGE_EVERY_SECONDS
        return {"lost": lost, "requeued": requeued, "queued": len(queued), "started": started, "resent": resent,
                "trials": swept["trials"], "stopped_early": swept["stopped_early"], "purged": purged}


def run_scheduler(tick_seconds: float, stop: threading.Event | None = None) -> None:
    stop = stop or _stop_on_signals()
    log.info("scheduler started: tick every %.1f s", tick_seconds)
    scheduler = Scheduler()
    reported_idle = False
    while not stop.is_set():
        close_old_connections()
        seen = _last_event_id()
        try:
            counts = scheduler.tick()
        except Exception:
            log.exception("scheduler tick failed: database=%s broker=%s", check_database(), check_broker())
            reported_idle = False
            stop.wait(tick_seconds)
            continue
        if any(counts[k] for k in ("lost", "requeued", "started", "resent", "trials", "stopped_early", "purged")):
            log.info("scheduler tick: %s", counts)
            reported_idle = False
        elif not reported_idle:
            log.info("scheduler idle: database and broker connected, nothing to place")
            reported_idle = True
        _wait_for_change(stop, tick_seconds, seen)
    log.info("scheduler stopped")


def _set_pending_reasons(reasons: Mapping[int, str]) -> None:
    """Store each waiting run's reason, touching only rows whose reason changed."""
    wanted = dict(reasons)
    if not wanted:
        return
    current = dict(Run.objects.filter(id__in=wanted, state=RunState.QUEUED).values_list("id", "pending_reason"))
    by_reason: dict[str, list[int]] = defaultdict(list)
    for run_id, reason in wanted.items():
        if run_id in current and current[run_id] != reason[:300]:
            by_reason[reason[:300]].append(run_id)
    for reason, run_ids in by_reason.items():
        Run.objects.filter(id__in=run_ids, state=RunState.QUEUED).update(pending_reason=reason)


def _last_event_id() -> int:
    return RunEvent.objects.aggregate(last=Max("id"))["last"] or 0


def _wait_for_change(stop: threading.Event, tick_seconds: float, seen: int) -> None:
    """Sleep until the next tick, or until a run changes state (a cheap indexed MAX(id) poll)."""
    deadline = time.monotonic() + tick_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        if stop.wait(min(WAKE_POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
            return
        try:
            if _last_event_id() != seen:
                return
        except Exception:
            return  # the tick reports database trouble


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop
