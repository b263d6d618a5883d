"""What the MLflow API keeps beside Kiln's own rows: an experiment's (project's) tags and MLflow 3's logged models.

A logged model belongs to the run that logged it; its files are that run's artifacts under
`models/<model id>/`, so the run page lists them and deleting the run deletes them.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import models

from webapp.experiments.models import Run
from webapp.projects.models import Project


class ExperimentTag(models.Model):
    """A key=value tag of a project set through MLflow's set-experiment-tag (the note tag is the project's description)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="mlflow_tags")
    name = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_experiment_tag")]

    def __str__(self) -> str:
        return f"{self.name}={self.value[:40]}"


class LoggedModelStatus(models.TextChoices):
    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


class LoggedModel(models.Model):
    """MLflow 3's LoggedModel: a model `mlflow.<flavor>.log_model` logged from a run."""

    model_id = models.CharField(max_length=40, unique=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="logged_models")
    creator = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=250)
    model_type = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=30, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING)
    status_message = models.TextField(blank=True)
    step = models.BigIntegerField(default=0, help_text="The run's step it was logged at (MLflow's LogOutputs).")
    params = models.JSONField(default=dict, help_text="Text params, as MLflow's.")
    tags = models.JSONField(default=dict, help_text="Text tags, as MLflow's.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_id})"

    @property
    def artifact_folder(self) -> str:
        return f"models/{self.model_id}"
