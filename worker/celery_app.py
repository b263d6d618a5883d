"""The one Celery app. Messages only ring the doorbell; the database is the source of truth.

A doorbell is acknowledged when its task starts (not when the job ends): a job can run for
days, and an unacknowledged message held that long only ties the worker to one broker
connection. Nothing is lost by acknowledging early: once the claim commits the database
holds the run, a doorbell lost before its claim is sent again by the scheduler (runs stuck in
`scheduled`), and a worker that dies is noticed by its missing heartbeats. The worker
reconnects to a restarted broker for as long as it takes and never cancels a running job
for it. A message that cannot be read is skipped and kept aside, never fatal (`worker.broker`).
"""

from __future__ import annotations

from celery import Celery
from django.conf import settings

RUN_TASK = "kiln.run.execute"
# Kiln's transports by URL scheme (rediss keeps kombu's own, which sets up TLS from the scheme).
_TRANSPORTS = {"redis": "worker.broker:RedisTransport", "filesystem": "worker.broker:FilesystemTransport"}


def make_celery_app() -> Celery:
    app = Celery("kiln")
    app.conf.update(
        broker_url=settings.CELERY_BROKER_URL,
        broker_transport=_TRANSPORTS.get(settings.CELERY_BROKER_URL.partition(":")[0]),
        broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,  # forever: a job's results go to the database, not the broker
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_ignore_result=True,
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_default_queue="kiln.default",
        include=["worker.tasks"],
    )
    return app


def worker_queue_name(worker_name: str) -> str:
    """Each worker consumes only its own queue, so a dispatch reaches exactly the chosen worker."""
    return f"kiln.worker.{worker_name}"


def send_run(app: Celery, *, run_id: int, attempt: int, worker_name: str, node_rank: int = 0) -> None:
    """Ring worker `worker_name`'s doorbell for one attempt (call it after the claim commits).

    A multi-node run rings each of its workers, with the node it runs (`node_rank`)."""
    args: list[object] = [run_id, attempt, worker_name] + ([node_rank] if node_rank else [])
    app.send_task(RUN_TASK, args=args, queue=worker_queue_name(worker_name))
