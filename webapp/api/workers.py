"""/api/workers: the workers, their state and the isolation their start-up canary found (read-only)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from ninja import Router, Schema

from webapp.api.auth import ApiRequest
from webapp.cluster.models import Worker
from webapp.cluster.selectors import worker_state

router = Router(tags=["workers"])


class WorkerOut(Schema):
    name: str
    hostname: str
    state: str  # online, draining, silent, stopped
    isolated: bool  # every isolation check held: code runs may go here
    isolation_summary: str
    isolation: dict  # {"checked_at", "sandbox", "checks": [{"name", "held", "detail"}], "summary"}; details: staff only
    draining: bool
    restarts: int
    last_error: str
    cpu_slots: int
    gpus: int
    heartbeat_at: datetime


@router.get("", response=list[WorkerOut])
def list_workers(request: ApiRequest) -> list[dict]:
    """Every registered worker, by name. What each isolation check saw (addresses, paths) is shown to staff only."""
    now = timezone.now()
    staff = request.auth.is_staff
    return [
        {"name": w.name, "hostname": w.hostname, "state": worker_state(w, now=now), "isolated": w.isolated,
         "isolation_summary": (w.isolation or {}).get("summary", "not checked yet"),
         "isolation": w.isolation if staff else _without_details(w.isolation or {}),
         "draining": w.draining, "restarts": w.restarts, "last_error": w.last_error, "cpu_slots": w.cpu_slots,
         "gpus": len(w.gpus or []), "heartbeat_at": w.heartbeat_at}
        for w in Worker.objects.order_by("name")
    ]


def _without_details(isolation: dict) -> dict:
    checks = [{"name": c.get("name"), "held": c.get("held"), "detail": ""} for c in isolation.get("checks", [])]
    return {**isolation, "checks": checks}
