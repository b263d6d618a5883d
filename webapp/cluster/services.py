"""Writes for the cluster: workers register, heartbeat, drain and sign off.

A worker name is held by one live process at a time (its `instance_id` and `pid` in the row).
Registration is a compare-and-swap on the row as it was read, so of two processes starting
with one name only one wins; the other is refused while the holder is alive. Heartbeats,
draining and sign-off change the row only while this instance still holds it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psutil
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from webapp.cluster.models import Worker

_LAST_ERROR_CHARS = 2000
PID_REUSE_SLACK_SECONDS = 2.0  # a holder registers after its process starts: a process created later is another one


class WorkerNameTaken(Exception):
    """Another live process holds this worker name (the message says which, and how to fix it)."""


@dataclass(frozen=True)
class Registration:
    worker: Worker
    took_over: bool  # the row was held by another (dead or stale) instance, whose runs this process cleans up
    predecessor: str  # that instance's id ("" if none, or a row from before instance ids)


def worker_register(*, name: str, hostname: str, queue: str, cpu_slots: int, gpus: list[dict],
                    instance_id: str = "", pid: int | None = None, memory_mb: int = 0) -> Worker:
    """Create or take over the worker row (the rule is `worker_claim_name`'s); returns the row."""
    return worker_claim_name(name=name, hostname=hostname, queue=queue, cpu_slots=cpu_slots, gpus=gpus,
                             instance_id=instance_id, pid=pid, memory_mb=memory_mb).worker


def worker_claim_name(*, name: str, hostname: str, queue: str, cpu_slots: int, gpus: list[dict],
                      instance_id: str, pid: int | None, memory_mb: int = 0) -> Registration:
    """Hold worker `name` for this process instance, or raise `WorkerNameTaken`.

    A row whose holder is alive (not stopped, heartbeat within KILN_WORKER_TIMEOUT) is taken over
    only when the holder is confirmed dead: on this host, its pid is gone or is a later process.
    A stale or stopped row is taken over. Restarts and last_error are the supervisor's, kept as they are.
    """
    for _ in range(5):
        now = timezone.now()
        fields = {"hostname": hostname, "queue": queue, "cpu_slots": cpu_slots, "gpus": gpus,
                  "memory_mb": memory_mb, "instance_id": instance_id, "pid": pid, "started_at": now,
                  "heartbeat_at": now, "stopped_at": None, "draining": False}
        row = Worker.objects.filter(name=name).first()
        if row is None:
            try:
                with transaction.atomic():
                    return Registration(Worker.objects.create(name=name, **fields), False, "")
            except IntegrityError:  # another process created it first: read it again
                continue
        previous = row.instance_id
        took_over = previous != instance_id
        if took_over:
            refusal = _refusal(row, hostname=hostname, now=now)
            if refusal:
                raise WorkerNameTaken(refusal)
        as_read = Worker.objects.filter(id=row.id, instance_id=previous, heartbeat_at=row.heartbeat_at,
                                        stopped_at=row.stopped_at)
        if as_read.update(**fields):  # 0: another process registered or heartbeat meanwhile; decide again
            row.refresh_from_db()
            return Registration(row, took_over, previous if took_over else "")
    raise WorkerNameTaken(f"worker name {name!r} keeps being registered by other processes; "
                          "stop them, or give this worker its own name with KILN_WORKER_NAME")


def worker_heartbeat(*, worker_id: int, instance_id: str | None = None) -> bool:
    """Record that the worker is alive; False when its row is gone, signed off, or held by another instance."""
    rows = Worker.objects.filter(id=worker_id, stopped_at__isnull=True)
    if instance_id is not None:
        rows = rows.filter(instance_id=instance_id)
    return bool(rows.update(heartbeat_at=timezone.now()))


def worker_holder(*, worker_id: int) -> str | None:
    """The instance id holding the row now (None when the row is gone)."""
    return Worker.objects.filter(id=worker_id).values_list("instance_id", flat=True).first()


def worker_drain(*, worker_id: int, instance_id: str) -> bool:
    """Mark this instance's worker as stopping: the scheduler places nothing more on it."""
    return bool(Worker.objects.filter(id=worker_id, instance_id=instance_id).update(draining=True))


def worker_sign_off(*, worker_id: int, instance_id: str | None = None) -> None:
    """Mark a cleanly stopped worker, so it is not mistaken for a lost one (only while this instance holds it)."""
    rows = Worker.objects.filter(id=worker_id)
    if instance_id is not None:
        rows = rows.filter(instance_id=instance_id)
    rows.update(stopped_at=timezone.now())


def worker_record_restart(*, name: str, error: str) -> None:
    """The supervisor restarts worker `name` after a crash: count it and keep how it ended."""
    Worker.objects.filter(name=name).update(restarts=F("restarts") + 1, last_error=error[:_LAST_ERROR_CHARS])


def worker_restarts_reset(*, name: str) -> None:
    """A new supervisor starts worker `name`: its count of restarts begins again (as /healthz's does)."""
    Worker.objects.filter(name=name).update(restarts=0, last_error="")


def isolation_holds(isolation: dict) -> bool:
    """The one rule: isolated when the canary ran checks and every one of them held."""
    checks = isolation.get("checks") or []
    return bool(checks) and all(check.get("held") is True for check in checks)


def worker_record_isolation(*, worker_id: int, isolation: dict) -> None:
    """Store what the start-up canary (`worker.canary`) found in the worker's row."""
    Worker.objects.filter(id=worker_id).update(isolation=isolation, isolated=isolation_holds(isolation))


def _refusal(row: Worker, *, hostname: str, now: dt.datetime) -> str:
    """Why `row` cannot be taken over ("" when it can: stopped, stale, or its holder confirmed dead)."""
    timeout = settings.CONFIG.worker_timeout_seconds
    if row.stopped_at is not None or (now - row.heartbeat_at).total_seconds() > timeout:
        return ""
    if row.hostname == hostname and row.pid and not _process_alive(row.pid, since=row.started_at):
        return ""
    holder = f"pid {row.pid} on {row.hostname}" if row.pid else f"a process on {row.hostname}"
    return (f"worker name {row.name!r} is held by a live worker ({holder}, heartbeat "
            f"{max(0.0, (now - row.heartbeat_at).total_seconds()):.0f} s ago): stop that worker first, "
            "or give this one its own name with KILN_WORKER_NAME")


def _process_alive(pid: int, *, since: dt.datetime) -> bool:
    """Whether `pid` is still the process that registered at `since` (not gone, a zombie, or a reused pid)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= since.timestamp() + PID_REUSE_SLACK_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # exists but unreadable (another user's): assume it is the holder
        return True
