"""Writes for the cluster: workers register, heartbeat and sign off."""

from __future__ import annotations

from django.utils import timezone

from webapp.cluster.models import Worker


def worker_register(*, name: str, hostname: str, queue: str, cpu_slots: int, gpus: list[dict]) -> Worker:
    """Create or refresh the worker row at start-up; a restarted worker keeps its name."""
    now = timezone.now()
    worker, _ = Worker.objects.update_or_create(
        name=name,
        defaults={
            "hostname": hostname,
            "queue": queue,
            "cpu_slots": cpu_slots,
            "gpus": gpus,
            "started_at": now,
            "heartbeat_at": now,
            "stopped_at": None,
        },
    )
    return worker


def worker_heartbeat(*, worker_id: int) -> bool:
    """Record that the worker is alive; False when its row is gone or it was signed off."""
    return bool(
        Worker.objects.filter(id=worker_id, stopped_at__isnull=True).update(heartbeat_at=timezone.now())
    )


def worker_sign_off(*, worker_id: int) -> None:
    """Mark a cleanly stopped worker, so it is not mistaken for a lost one."""
    Worker.objects.filter(id=worker_id).update(stopped_at=timezone.now())
