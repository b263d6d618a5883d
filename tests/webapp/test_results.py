"""Metrics, logs and artifacts are stored idempotently; summaries stay right."""

import math

import pytest
from django.core.files.base import ContentFile

from webapp.experiments.models import Metric, MetricSummary
from webapp.experiments.results import MetricPoint, ResultError, artifact_store, logs_append, metrics_log
from webapp.experiments.selectors import log_tail, metric_points
from webapp.experiments.submit import run_submit

from .factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    project = ProjectFactory()
    return run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]


def _points(key, values, start=0):
    return [MetricPoint(key, start + i, v, 1000.0 + i) for i, v in enumerate(values)]


def test_a_redelivered_batch_is_stored_once(run):
    batch = _points("loss", [3.0, 2.0, 1.0])
    assert metrics_log(run_id=run.id, points=batch) == 3
    assert metrics_log(run_id=run.id, points=batch) == 0
    assert Metric.objects.filter(run=run).count() == 3
    summary = MetricSummary.objects.get(run=run, key="loss")
    assert (summary.last, summary.last_step, summary.min, summary.max, summary.count) == (1.0, 2, 1.0, 3.0, 3)


def test_summaries_follow_incremental_batches_and_ignore_nan_for_min_max(run):
    metrics_log(run_id=run.id, points=_points("acc", [0.5, 0.7]))
    metrics_log(run_id=run.id, points=_points("acc", [math.nan, 0.9], start=2))
    summary = MetricSummary.objects.get(run=run, key="acc")
    assert (summary.last, summary.min, summary.max, summary.count) == (0.9, 0.5, 0.9, 4)
    assert [p[1] for p in metric_points(run, "acc")][2] is None  # NaN is stored as NULL
    assert [p[0] for p in metric_points(run, "acc", since_step=1)] == [2, 3]


def test_oversized_or_malformed_batches_change_nothing(run):
    with pytest.raises(ResultError, match="at most 10,000"):
        metrics_log(run_id=run.id, points=_points("x", [0.0] * 10_001))
    with pytest.raises(ResultError):
        metrics_log(run_id=run.id, points=[MetricPoint("", 0, 1.0, 1.0)])
    assert Metric.objects.count() == 0 and MetricSummary.objects.count() == 0


def test_log_lines_are_idempotent_and_tail_from_an_offset(run):
    logs_append(run_id=run.id, lines=[(0, "stdout", "a"), (1, "stderr", "b")])
    logs_append(run_id=run.id, lines=[(1, "stderr", "b"), (2, "stdout", "c")])
    assert [line["text"] for line in log_tail(run, offset=1)] == ["b", "c"]


def test_artifacts_keep_size_and_checksum_and_refuse_escaping_names(run, settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    artifact = artifact_store(run_id=run.id, name="model.safetensors", kind="checkpoint", file=ContentFile(b"abc", name="x"))
    assert artifact.size == 3
    assert artifact.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(ResultError):
        artifact_store(run_id=run.id, name="../../etc/passwd", kind="artifact", file=ContentFile(b"x", name="x"))


@pytest.mark.django_db(transaction=True)
def test_a_replacement_that_fails_keeps_the_old_artifact_and_leaves_no_new_file(run, settings, tmp_path, monkeypatch):
    from django.db import DatabaseError

    from webapp.experiments.models import Artifact

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    first = artifact_store(run_id=run.id, name="model.safetensors", kind="checkpoint", file=ContentFile(b"v1", name="x"))

    def broken_create(**fields):
        raise DatabaseError("the database went away")

    monkeypatch.setattr(Artifact.objects, "create", broken_create)
    with pytest.raises(DatabaseError):
        artifact_store(run_id=run.id, name="model.safetensors", kind="checkpoint", file=ContentFile(b"v2", name="x"))
    kept = Artifact.objects.get(run_id=run.id, name="model.safetensors")
    assert kept.sha256 == first.sha256 and (tmp_path / kept.storage_path).read_bytes() == b"v1"
    assert [p.name for p in (tmp_path / kept.storage_path).parent.iterdir()] == [(tmp_path / kept.storage_path).name]
    monkeypatch.undo()
    second = artifact_store(run_id=run.id, name="model.safetensors", kind="checkpoint", file=ContentFile(b"v2", name="x"))
    assert (tmp_path / second.storage_path).read_bytes() == b"v2" and not (tmp_path / first.storage_path).exists()
