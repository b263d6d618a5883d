"""The worker is stopping (Ctrl-C, SIGTERM): its jobs end now and their runs go back to the queue.

Celery's warm shutdown waits for running tasks, and a training job may run for days; so the
`worker_shutting_down` signal sets this flag, each job's watcher stops its process tree
within a tick, and the task hands the run back as lost (the scheduler re-queues it and it
resumes from its last checkpoint).
"""

from __future__ import annotations

import threading
from typing import Any

_stopping = threading.Event()


def worker_stopping() -> bool:
    return _stopping.is_set()


def stop_running_jobs(**_signal_args: Any) -> None:
    """Connected to Celery's `worker_shutting_down`; also callable directly."""
    _stopping.set()


def reset() -> None:
    """For a worker started again in the same process (tests)."""
    _stopping.clear()
