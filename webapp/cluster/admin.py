from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from webapp.cluster.models import Quota, Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "hostname", "queue", "cpu_slots", "isolated", "isolation_summary", "draining", "restarts",
                    "heartbeat_at", "stopped_at"]
    list_filter = ["isolated", "draining"]
    # What the start-up canary found is the worker's own report: shown, never edited here.
    readonly_fields = ["started_at", "heartbeat_at", "stopped_at", "isolated", "isolation", "restarts", "last_error"]

    @admin.display(description="isolation")
    def isolation_summary(self, worker: Worker) -> str:
        return (worker.isolation or {}).get("summary", "not checked yet")


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Limits per user or team (empty: unlimited); the scheduler enforces them, submits are never refused."""

    list_display = ["owner", "gpus", "cpus", "memory_gb", "runs", "gpu_hours_per_week", "updated_at", "updated_by"]
    list_select_related = ["user", "team", "updated_by"]
    search_fields = ["user__username", "team__slug"]
    raw_id_fields = ["user", "team"]
    readonly_fields = ["updated_at", "updated_by"]
    fields = ["user", "team", "gpus", "cpus", "memory_gb", "runs", "gpu_hours_per_week", "updated_at", "updated_by"]

    @admin.display(description="for")
    def owner(self, quota: Quota) -> str:
        return quota.owner_label

    def save_model(self, request: HttpRequest, obj: Quota, form: Any, change: bool) -> None:
        obj.updated_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
