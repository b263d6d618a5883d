"""The one Celery app. Messages only ring the doorbell; the database is the source of truth."""

from __future__ import annotations

from celery import Celery
from django.conf import settings


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
    )
    return app


def worker_queue_name(worker_name: str) -> str:
    """Each worker consumes only its own queue, so a dispatch reaches exactly the chosen worker."""
    return f"kiln.worker.{worker_name}"
