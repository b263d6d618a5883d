from __future__ import annotations

from django.conf import settings
from django.db import models


class Dashboard(models.Model):
    """A named compare view in a project: its runs (or sweep), charts and settings.

    `state` holds the compare view's query parameters (see `webapp.dashboards.state`), so
    opening a dashboard and opening its compare URL show the same thing.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="dashboards")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="dashboards"
    )
    name = models.CharField(max_length=120)
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_dashboard_name")]

    def __str__(self) -> str:
        return self.name
