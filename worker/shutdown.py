"""The worker is stopping (Ctrl-C, SIGTERM): its jobs end now and their runs go back to the queue.

Celery's warm shutdown waits for running tasks, and a training job may run for days; so the
`worker_shutting_down` signal sets this flag, each job's watcher stops its process tree
within a tick, and the task hands the run back as lost (the scheduler re-queues it and it
resumes from its last checkpoint). Before that the worker marks itself draining, so the
scheduler places the re-queued run elsewhere, not on this worker that is going away.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import connection

from webapp.cluster.services import worker_drain

log = logging.getLogger("kiln.worker")
DRAIN_WAIT_SECONDS = 5.0  # past this (database away) the jobs stop anyway; their hand-back waits for it too
_stopping = threading.Event()
_drain_as: tuple[int, str] | None = None  # (worker row id, instance id) marked draining at the stop


def worker_stopping() -> bool:
    return _stopping.is_set()


def drain_on_stop(*, worker_id: int, instance_id: str) -> None:
    """The row this process holds, marked draining when it is told to stop (registration clears it)."""
    global _drain_as
    _drain_as = (worker_id, instance_id)


def stop_running_jobs(**_signal_args: Any) -> None:
    """Connected to Celery's `worker_shutting_down`; also callable directly."""
    if not _stopping.is_set() and _drain_as is not None:
        _mark_draining(*_drain_as)
    _stopping.set()


def reset() -> None:
    """For a worker started again in the same process (tests)."""
    global _drain_as
    _stopping.clear()
    _drain_as = None


def _mark_draining(worker_id: int, instance_id: str) -> None:
    """In a thread of its own: this may run in a signal handler, on a thread busy with its own connection."""

    def drain() -> None:
        try:
            if not worker_drain(worker_id=worker_id, instance_id=instance_id):
                log.warning("worker row %s is no longer this process's: not marked draining", worker_id)
        except Exception as exc:  # the database away: the scheduler's recovery notices the silence instead
            log.warning("could not mark this worker draining: %s", str(exc).splitlines()[0] if str(exc) else exc)
        finally:
            connection.close()

    marker = threading.Thread(target=drain, name="drain", daemon=True)
    marker.start()
    marker.join(DRAIN_WAIT_SECONDS)
