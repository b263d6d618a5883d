"""The one Celery app. Messages only ring the doorbell; the database is the source of truth."""

from __future__ import annotations

from celery import Celery
from django.conf import settings

RUN_TASK = "kiln.run.execute"


def make_celery_app() -> Celery:
    app = Celery("kiln")
    app.conf.update(
        broker_url=settings.CELERY_BROKER_URL,
        broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_default_queue="kiln.default",
        include=["worker.tasks"],
    )
    return app


def worker_queue_name(worker_name: str) -> str:
    """Each worker consumes only its own queue, so a dispatch reaches exactly the chosen worker."""
    return f"kiln.worker.{worker_name}"


def send_run(app: Celery, *, run_id: int, attempt: int, worker_name: str) -> None:
    """Ring worker `worker_name`'s doorbell for one attempt (call it after the claim commits)."""
    app.send_task(RUN_TASK, args=[run_id, attempt, worker_name], queue=worker_queue_name(worker_name))
