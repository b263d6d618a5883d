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
    # Identity: one row per name, held by one live process at a time (its instance id and pid).
    instance_id = models.CharField(max_length=64, blank=True, help_text="Random per process; changes at each start.")
    pid = models.PositiveIntegerField(null=True, blank=True)
    draining = models.BooleanField(default=False, help_text="Stopping: the scheduler places nothing here.")
    memory_mb = models.PositiveBigIntegerField(default=0, help_text="Host memory runs may use here (0: unknown).")
    # What the start-up canary found the sandbox can do ({"checks": [...], "summary": ...}).
    isolation = models.JSONField(default=dict, blank=True)
    isolated = models.BooleanField(default=False, help_text="Every isolation check held: code runs may go here.")
    restarts = models.PositiveIntegerField(default=0, help_text="Times its supervisor restarted it after a crash.")
    last_error = models.TextField(blank=True, help_text="How its previous process ended, when it crashed.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
