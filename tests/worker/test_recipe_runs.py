"""A recipe run (no code of its own) executes the built-in recipe runner inside the sandbox."""

from __future__ import annotations

import pytest

from webapp.experiments.models import Artifact, MetricSummary
from webapp.experiments.submit import run_submit
from worker.executor import execute
from worker.limits import JobLimits

from .conftest import ProjectFactory

pytestmark = pytest.mark.slow


def test_a_recipe_run_trains_and_stores_metrics_and_checkpoints(claimed, settings, log_text):
    project = ProjectFactory()
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": 2, "batch_size": 32, "hidden_size": 16}}
    run = claimed(run_submit(user=project.owner_user, project=project, spec=spec).runs[0])
    outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                      limits=JobLimits(wall_seconds=120))
    run.refresh_from_db()
    assert outcome.state == "succeeded", log_text(run)
    keys = set(MetricSummary.objects.filter(run=run).values_list("key", flat=True))
    assert {"loss", "lr"} <= keys, keys
    assert Artifact.objects.filter(run=run, kind="checkpoint").exists()
    assert run.progress.get("epochs") == 2
