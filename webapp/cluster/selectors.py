"""Reads for the cluster."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from webapp.cluster.models import Worker


def workers_online() -> QuerySet[Worker]:
    """Workers that are running and heartbeated within the worker timeout."""
    cutoff = timezone.now() - timedelta(seconds=settings.CONFIG.worker_timeout_seconds)
    return Worker.objects.filter(stopped_at__isnull=True, heartbeat_at__gte=cutoff)


def worker_state(worker: Worker, *, now: datetime | None = None) -> str:
    """online, draining (stopping: gets no new runs), silent (no heartbeat within the timeout) or stopped."""
    if worker.stopped_at is not None:
        return "stopped"
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CONFIG.worker_timeout_seconds)
    if worker.heartbeat_at < cutoff:
        return "silent"
    return "draining" if worker.draining else "online"
