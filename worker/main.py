"""`kiln worker`: register, heartbeat, and consume this worker's own Celery queue.

Each job runs in a thread of Celery's thread pool (one per CPU slot), which starts and
watches the job's sandboxed subprocess (`worker.executor`); that watcher also notices a
cancel within a second. At start the worker ends whatever an earlier process of the same
name left behind: runs it had claimed become `lost` (the scheduler re-queues them) and
its leftover job cgroups are killed. Each heartbeat does the same for a run the database
says is running here but no task of this process holds (its end could not be recorded).
When the worker is told to stop (Ctrl-C, SIGTERM), its jobs stop at once and their runs are
handed back as lost, to resume from their last checkpoint (`worker.shutdown`).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable

from celery.exceptions import CPendingDeprecationWarning
from celery.signals import celeryd_after_setup, worker_shutting_down
from django.conf import settings
from django.db import close_old_connections

from webapp.cluster.models import Worker
from webapp.cluster.services import worker_heartbeat, worker_register, worker_sign_off
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Run, RunState
from worker.celery_app import make_celery_app, worker_queue_name
from worker.cgroup import remove_stale
from worker.gpus import discover_gpus
from worker.outage import UNREACHABLE, first_line
from worker.sandbox import bwrap_path, setpriv_usable
from worker.shutdown import stop_running_jobs
from worker.tasks import attempts_in_hand

log = logging.getLogger("kiln.worker")


def run_worker() -> None:
    config = settings.CONFIG
    celeryd_after_setup.connect(_quiet_cancel_warning, weak=False)
    queue = worker_queue_name(config.worker_name)
    gpus = discover_gpus()
    cpu_slots = os.cpu_count() or 1
    register = functools.partial(
        worker_register, name=config.worker_name, hostname=os.uname().nodename, queue=queue,
        cpu_slots=cpu_slots, gpus=gpus,
    )
    record = register()
    log.info("worker %s registered: %d CPU slots, %d GPUs, queue %s", record.name, cpu_slots, len(gpus), queue)
    _recover_previous_process(record.id, config.worker_name)
    log.info("jobs on %s: bubblewrap %s, unprivileged uid %s", record.name,
             "yes" if bwrap_path() else "NO (plain subprocess)", "yes" if setpriv_usable() else "no")
    stop = threading.Event()
    current = {"id": record.id}
    beat = threading.Thread(
        target=_heartbeat_loop, args=(current, register, config.heartbeat_seconds, stop, config.worker_name),
        name="heartbeat", daemon=True,
    )
    beat.start()
    log.info("worker %s idle: waiting for runs on %s", record.name, queue)
    worker_shutting_down.connect(stop_running_jobs, weak=False)
    try:
        app = make_celery_app()
        app.worker_main(
            [
                "worker",
                "--queues", queue,
                "--hostname", f"{config.worker_name}@%h",
                "--pool", "threads",
                "--concurrency", str(cpu_slots),
                "--loglevel", "INFO",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        stop.set()
        beat.join(timeout=5)
        worker_sign_off(worker_id=current["id"])
        log.info("worker %s signed off", record.name)


def _quiet_cancel_warning(**_: object) -> None:
    """Celery warns at every broker reconnect that it may one day cancel late-acknowledged tasks;
    Kiln acknowledges doorbells at start (worker.celery_app), so it concerns no job here."""
    # NOTE: installed after Celery's own logging set-up, which turns these warnings to "always".
    warnings.filterwarnings("ignore", message=r"\s*In Celery 5.1 we introduced", category=CPendingDeprecationWarning)


def _heartbeat_loop(current: dict[str, int], register: Callable[[], Worker], every: float,
                    stop: threading.Event, worker_name: str) -> None:
    """Heartbeat every `every` seconds; a removed worker row is registered again."""
    unreachable_since: float | None = None
    while not stop.wait(every):
        try:
            close_old_connections()
            if not worker_heartbeat(worker_id=current["id"]):
                current["id"] = register().id
                log.warning("heartbeat found worker row removed or signed off: registered again as %s", current["id"])
            _hand_back_orphans(current["id"], worker_name, "no longer holds it (its end could not be recorded)")
        except UNREACHABLE as exc:  # one line per outage, not a traceback per beat
            if unreachable_since is None:
                unreachable_since = time.monotonic()
                log.warning("heartbeat: database unreachable (%s); retrying every %g s", first_line(exc), every)
            continue
        except Exception:
            log.exception("heartbeat failed; retrying in %g s", every)
            continue
        if unreachable_since is not None:
            log.info("heartbeat: database reachable again after %.0f s", time.monotonic() - unreachable_since)
            unreachable_since = None


def _hand_back_orphans(worker_id: int, worker_name: str, why: str) -> None:
    """Runs the database says are running here but no task of this process holds become lost."""
    running = list(Run.objects.filter(worker_id=worker_id, state=RunState.RUNNING).values_list("id", "attempt"))
    held = attempts_in_hand()  # NOTE: read after the query: a task adds its attempt before it claims the run
    for run_id, attempt in running:
        if (run_id, attempt) not in held and run_transition(
                run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.LOST, expected_attempt=attempt,
                reason=f"worker {worker_name} {why}"):
            log.warning("run %s attempt %s was running here but no task holds it: marked lost", run_id, attempt)


def _recover_previous_process(worker_id: int, worker_name: str) -> None:
    """Runs this worker name was running before a restart are gone: mark them lost."""
    _hand_back_orphans(worker_id, worker_name, "restarted while it ran")
    removed = remove_stale(f"kiln-{worker_name}-")
    if removed:
        log.warning("removed %d job cgroups left by an earlier process of this worker", removed)
