from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
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


class Quota(models.Model):
    """Limits an admin set for one user or one team (exactly one of the two); empty fields are unlimited.

    The scheduler alone enforces them (`scheduler.quotas`): a run that would go past one waits
    with the quota as its pending reason; submits are never refused for them.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="quota")
    team = models.OneToOneField("accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="quota")
    gpus = models.PositiveIntegerField(null=True, blank=True, help_text="GPUs held at once.")
    cpus = models.PositiveIntegerField(null=True, blank=True, help_text="CPU slots held at once.")
    memory_gb = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)],
                                  help_text="Host memory held at once, in GB.")
    runs = models.PositiveIntegerField(null=True, blank=True, help_text="Runs scheduled or running at once.")
    gpu_hours_per_week = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)],
                                           help_text="GPU-hours used in the last 7 days.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, team__isnull=True)
                           | models.Q(user__isnull=True, team__isnull=False)),
                name="quota_for_a_user_or_a_team",
            ),
        ]

    def __str__(self) -> str:
        return f"quota of {self.owner_label}"

    def clean(self) -> None:
        if (self.user_id is None) == (self.team_id is None):
            raise ValidationError("A quota is for one user or one team: choose exactly one of them.")

    @property
    def owner_label(self) -> str:
        return f"user {self.user}" if self.user_id else f"team {self.team}"
