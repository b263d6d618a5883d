from django.contrib import admin

from webapp.cluster.models import Worker


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
