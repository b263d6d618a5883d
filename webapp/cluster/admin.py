from django.contrib import admin

from webapp.cluster.models import Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "hostname", "queue", "cpu_slots", "heartbeat_at", "stopped_at"]
    readonly_fields = ["started_at", "heartbeat_at", "stopped_at"]
