"""`kiln worker`: register, heartbeat, and consume this worker's own Celery queue.

Each job runs in a thread of Celery's thread pool (one per CPU slot), which starts and
watches the job's sandboxed subprocess (`worker.executor`); that watcher also notices a
cancel within a second. A worker name is held by one live process (`worker_claim_name`: a
second process of that name refuses to start). Taking over from a dead or silent predecessor,
the worker ends what it left behind: runs it had claimed become `lost` (the scheduler re-queues
them) and its leftover job cgroups are killed. Each heartbeat does the same for an attempt this
process started that the database says is running here but no task holds (its end could not be
recorded); a heartbeat that finds its row taken over by another process stops this one.
When the worker is told to stop (Ctrl-C, SIGTERM), it marks itself draining, its jobs stop at
once and their runs are handed back as lost, to resume from their last checkpoint (`worker.shutdown`).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable

import psutil
from celery.exceptions import CPendingDeprecationWarning
from celery.signals import celeryd_after_setup, worker_shutting_down
from django.conf import settings
from django.db import close_old_connections
from django.db.models import F, Q

from webapp.cluster.services import (
    Registration,
    WorkerNameTaken,
    isolation_holds,
    worker_claim_name,
    worker_heartbeat,
    worker_holder,
    worker_record_isolation,
    worker_sign_off,
)
from webapp.config import Config
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import NodeState, Run, RunState
from worker.canary import isolation_verdict
from worker.celery_app import make_celery_app, worker_queue_name
from worker.cgroup import remove_stale
from worker.gpus import discover_gpus, select_gpus
from worker.identity import EXIT_NAME_TAKEN, cgroup_prefix, instance_id
from worker.outage import UNREACHABLE, first_line
from worker.sandbox import bubblewrap_hint
from worker.shutdown import drain_on_stop, stop_running_jobs
from worker.tasks import attempts_in_hand, attempts_started, forget_attempt

log = logging.getLogger("kiln.worker")
RUNS_MEMORY_SHARE = 0.9  # of host memory, what runs may use; the rest is the worker's and the system's


def run_worker() -> None:
    config = settings.CONFIG
    celeryd_after_setup.connect(_quiet_cancel_warning, weak=False)
    queue = worker_queue_name(config.worker_name)
    try:
        gpus = select_gpus(discover_gpus(), config.worker_gpus)
    except ValueError as exc:
        print(f"kiln worker: refusing to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    cpu_slots = runs_cpu_slots(config)
    instance = instance_id()
    register = functools.partial(
        worker_claim_name, name=config.worker_name, hostname=os.uname().nodename, queue=queue,
        cpu_slots=cpu_slots, gpus=gpus, instance_id=instance, pid=os.getpid(), memory_mb=runs_memory_mb(config),
    )
    try:
        registration = register()
    except WorkerNameTaken as exc:
        print(f"kiln worker: refusing to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_NAME_TAKEN) from None
    record = registration.worker
    log.info("worker %s registered (instance %s, pid %d): %d CPU slots, %d GPUs, %d MB for runs, queue %s",
             record.name, instance[:12], os.getpid(), cpu_slots, len(gpus), record.memory_mb, queue)
    if registration.took_over:
        _recover_previous_process(record.id, config.worker_name, registration.predecessor)
    _check_isolation(record.id, record.name)
    stop = threading.Event()
    current = {"id": record.id}
    beat = threading.Thread(
        target=_heartbeat_loop, args=(current, register, config.heartbeat_seconds, stop, config.worker_name),
        name="heartbeat", daemon=True,
    )
    beat.start()
    log.info("worker %s idle: waiting for runs on %s", record.name, queue)
    drain_on_stop(worker_id=record.id, instance_id=instance)
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
        worker_sign_off(worker_id=current["id"], instance_id=instance)
        log.info("worker %s signed off", record.name)


def runs_cpu_slots(config: Config) -> int:
    """CPU slots this worker offers runs: KILN_WORKER_CPUS, else one per CPU of the host."""
    return config.worker_cpus or os.cpu_count() or 1


def runs_memory_mb(config: Config) -> int:
    """Host memory runs may use here (the scheduler counts it): KILN_WORKER_MEMORY_GB, else most of the host's,
    a reserve left to the worker."""
    if config.worker_memory_gb is not None:
        return int(config.worker_memory_gb * 1024)
    return int(psutil.virtual_memory().total * RUNS_MEMORY_SHARE) // 2**20


def _check_isolation(worker_id: int, name: str) -> None:
    """Run the canary job (`worker.canary`) and record what isolation jobs really get here."""
    config = settings.CONFIG
    verdict = isolation_verdict(config)
    worker_record_isolation(worker_id=worker_id, isolation=verdict)
    if isolation_holds(verdict):
        log.info("jobs on %s: %s", name, verdict["summary"])
        return
    for check in verdict["checks"]:
        if not check["held"]:
            log.warning("isolation check failed: %s: %s", check["name"], check["detail"])
    if config.allow_unisolated_code:
        log.warning("jobs on %s: %s; code runs still run here because KILN_ALLOW_UNISOLATED_CODE is set",
                    name, verdict["summary"])
    else:
        log.warning("jobs on %s: %s; code runs are refused here (%s)", name, verdict["summary"], bubblewrap_hint())


def _quiet_cancel_warning(**_: object) -> None:
    """Celery warns at every broker reconnect that it may one day cancel late-acknowledged tasks;
    Kiln acknowledges doorbells at start (worker.celery_app), so it concerns no job here."""
    # NOTE: installed after Celery's own logging set-up, which turns these warnings to "always".
    warnings.filterwarnings("ignore", message=r"\s*In Celery 5.1 we introduced", category=CPendingDeprecationWarning)


def _heartbeat_loop(current: dict[str, int], register: Callable[[], Registration], every: float,
                    stop: threading.Event, worker_name: str) -> None:
    """Heartbeat every `every` seconds; a removed worker row is registered again, one taken over ends this process."""
    unreachable_since: float | None = None
    instance = instance_id()
    while not stop.wait(every):
        try:
            close_old_connections()
            if not worker_heartbeat(worker_id=current["id"], instance_id=instance):
                holder = worker_holder(worker_id=current["id"])
                if holder is not None and holder != instance:
                    _stop_serving(f"another process (instance {holder[:12]}) took worker {worker_name} over")
                    return
                current["id"] = register().worker.id
                drain_on_stop(worker_id=current["id"], instance_id=instance)
                worker_record_isolation(worker_id=current["id"], isolation=isolation_verdict(settings.CONFIG))
                log.warning("heartbeat found worker row removed or signed off: registered again as %s", current["id"])
            _hand_back_orphans(current["id"], worker_name, "no longer holds it (its end could not be recorded)",
                               started=attempts_started())
        except WorkerNameTaken as exc:
            _stop_serving(str(exc))
            return
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


def _stop_serving(why: str) -> None:
    """Leave the name to the process that holds it now, instead of fighting over its runs."""
    log.error("worker stops serving: %s", why)
    os.kill(os.getpid(), signal.SIGTERM)  # Celery's shutdown: jobs stop; their hand-back's CAS fails harmlessly


def _hand_back_orphans(worker_id: int, worker_name: str, why: str,
                       started: set[tuple[int, int]] | None = None) -> None:
    """Runs the database says are running here but no task of this process holds become lost.

    `started`: only these attempts (the heartbeat's: this process's own); None: all (a predecessor's, at start)."""
    mine = Q(worker_id=worker_id) | Q(  # a multi-node run: any of its nodes here (the run's row names node 0's worker)
        nodes_of__worker_id=worker_id, nodes_of__attempt=F("attempt"), nodes_of__state=NodeState.RUNNING)
    running = list(Run.objects.filter(mine, state=RunState.RUNNING).distinct().values_list("id", "attempt"))
    held = attempts_in_hand()  # NOTE: read after the query: a task adds its attempt before it claims the run
    for run_id, attempt in running:
        if (run_id, attempt) in held or (started is not None and (run_id, attempt) not in started):
            continue
        if run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.LOST,
                          expected_attempt=attempt, reason=f"worker {worker_name} {why}"):
            log.warning("run %s attempt %s was running here but no task holds it: marked lost", run_id, attempt)
        forget_attempt(run_id, attempt)


def _recover_previous_process(worker_id: int, worker_name: str, predecessor: str) -> None:
    """The dead predecessor's runs are gone: mark them lost, and kill its leftover job cgroups (none of others')."""
    _hand_back_orphans(worker_id, worker_name, "restarted while it ran")
    removed = remove_stale(cgroup_prefix(worker_name, predecessor)) if predecessor else 0
    if removed:
        log.warning("removed %d job cgroups left by the previous process of this worker", removed)
