"""The demo project a first start creates, so the dashboards show real runs from minute one."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from webapp.experiments.submit import run_submit
from webapp.projects.models import Project
from webapp.projects.services import project_create

DEMO_SPECS = [
    {
        "name": "mlp-digits",
        "recipe": {"model": "mlp", "dataset": "digits", "epochs": 5, "batch_size": 64, "hidden_size": 128},
        "tags": ["demo", "baseline"],
        "notes": "A two-layer perceptron on the bundled 8x8 digits.",
    },
    {
        "name": "cnn-digits",
        "recipe": {"model": "cnn", "dataset": "digits", "epochs": 5, "batch_size": 64,
                   "optimizer": {"name": "adamw", "lr": 0.003, "weight_decay": 0.01}, "scheduler": {"name": "cosine"}},
        "tags": ["demo"],
    },
    {
        "name": "mlp-lr-sweep",
        "recipe": {"model": "mlp", "dataset": "spirals", "epochs": 20, "hidden_size": 64},
        "tags": ["demo", "sweep"],
        "sweep": {"method": "grid", "parameters": {"optimizer.lr": {"values": [0.003, 0.01, 0.03]}}},
    },
]


def demo_project_create(*, username: str) -> Project:
    """A project owned by `username` with a few real recipe runs queued (they train on the local worker)."""
    user = get_user_model().objects.get(username=username)
    project = project_create(user=user, name="Demo", description="Example runs submitted at the first start.")
    for spec in DEMO_SPECS:
        run_submit(user=user, project=project, spec=spec)
    return project
