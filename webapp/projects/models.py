from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Visibility(models.TextChoices):
    PRIVATE = "private", "Private"
    TEAM = "team", "Team"
    PUBLIC = "public", "Public read-only link"


class LiveProjectManager(models.Manager["Project"]):
    """`Project.objects`: projects that are not soft-deleted (MLflow's deleted experiments are in `Project.all_objects`)."""

    def get_queryset(self) -> models.QuerySet[Project]:
        return super().get_queryset().filter(deleted_at__isnull=True)


class Project(models.Model):
    """A home for runs, owned by a user or by a team.

    A team-owned project is open to the team's members by role. A user-owned project is
    private to its owner unless shared with `team` (visibility "team"). Visibility
    "public" additionally opens a read-only view to anyone holding `public_token`.
    """

    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="projects"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="projects",
        help_text="The owning team, or for a user's project the team it is shared with.",
    )
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    public_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    run_counter = models.PositiveIntegerField(default=0, help_text="The last run number handed out.")
    runs_version = models.BigIntegerField(
        default=0, editable=False,
        help_text="Changes with every transaction that changes the project's runs, their tags or metric summaries "
                  "(database triggers: migration 0004, experiments.apps on SQLite) and never goes back: the run list's cache key.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Soft-deleted through the MLflow API (restorable).")

    all_objects = models.Manager()  # soft-deleted rows too
    objects = LiveProjectManager()

    class Meta:
        ordering = ["name"]
        default_manager_name = "objects"
        constraints = [
            models.CheckConstraint(
                condition=Q(owner_user__isnull=False) | Q(team__isnull=False), name="project_has_an_owner"
            ),
            models.UniqueConstraint(
                fields=["owner_user", "slug"], condition=Q(owner_user__isnull=False), name="unique_user_project_slug"
            ),
            models.UniqueConstraint(
                fields=["team", "slug"], condition=Q(owner_user__isnull=True), name="unique_team_project_slug"
            ),
        ]
        indexes = [models.Index(fields=["deleted_at"], condition=Q(deleted_at__isnull=False), name="project_deleted_at")]

    def __str__(self) -> str:
        return f"{self.owner_label}/{self.slug}"

    @property
    def owner_label(self) -> str:
        return self.owner_user.username if self.owner_user_id else self.team.slug  # type: ignore[union-attr]

    @property
    def team_owned(self) -> bool:
        return self.owner_user_id is None

    @property
    def audience(self) -> str:
        """Who can see the project, as its badge says: a team's own project is "team" even when not shared further."""
        if self.visibility == Visibility.PRIVATE and self.team_owned:
            return Visibility.TEAM.value
        return str(self.visibility)

    @property
    def audience_label(self) -> str:
        return str(Visibility(self.audience).label)


class RunTableColumns(models.Model):
    """The run-table columns one user picked for one project (ids as `experiments.run_columns` reads them)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    columns = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="unique_run_columns_per_user_project")]

    def __str__(self) -> str:
        return f"{self.project} columns of user {self.user_id}"
