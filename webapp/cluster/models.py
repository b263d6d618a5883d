from django.db import models


class Worker(models.Model):
    """A worker process that runs jobs; it registers at start and heartbeats while alive."""

    name = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=255)
    queue = models.CharField(max_length=255, help_text="The Celery queue this worker alone consumes.")
    cpu_slots = models.PositiveIntegerField(default=1)
    gpus = models.JSONField(default=list, blank=True, help_text="[{index, name, memory_mb}, ...]")
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
