"""MLflow's soft delete and repeated steps through the real client: deleted runs and experiments stay restorable
(and out of Kiln's sight) until purged; every value logged at a step is kept."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import requests
from django.core.files.storage import default_storage
from django.utils import timezone

from webapp.experiments.models import Artifact, Metric, ReplacedMetric, Run
from webapp.experiments.soft_delete import deleted_purge
from webapp.experiments.submit import run_submit
from webapp.projects.models import Project

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import ViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def _kiln_api(kiln, path: str, **params) -> requests.Response:
    return requests.get(f"{kiln.url}/api{path}", params=params, headers={"Authorization": f"Bearer {kiln.token}"},
                        timeout=30)


def _kiln_run_ids(kiln, **params) -> list[int]:
    answer = _kiln_api(kiln, "/runs", **params)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def test_a_deleted_run_is_kept_hidden_from_kiln_searched_by_view_type_and_restored(kiln):
    client = MlflowClient()
    experiment_id = client.create_experiment("trash")
    kept = client.create_run(experiment_id, run_name="kept").info.run_id
    client.set_terminated(kept)
    doomed = client.create_run(experiment_id, run_name="doomed").info.run_id
    client.log_metric(doomed, "loss", 0.5)

    client.delete_run(doomed)  # still running: Kiln ends it (cancelled) first, as MLflow's run stops being active
    run = client.get_run(doomed)
    assert (run.info.lifecycle_stage, run.info.status) == ("deleted", "KILLED")
    assert run.data.metrics == {"loss": 0.5}
    assert [m.value for m in client.get_metric_history(doomed, "loss")] == [0.5]

    def search(view: int) -> list[str]:
        return sorted(r.info.run_name for r in client.search_runs([experiment_id], run_view_type=view))

    assert search(ViewType.ACTIVE_ONLY) == ["kept"]
    assert search(ViewType.DELETED_ONLY) == ["doomed"]
    assert search(ViewType.ALL) == ["doomed", "kept"]
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.log_metric(doomed, "loss", 0.1)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.set_tag(doomed, "k", "v")
    assert Metric.objects.filter(run_id=int(doomed)).count() == 1  # the refused write changed nothing

    # Kiln's own views: the run table (both of its query paths), the run API, the project's run count
    assert _kiln_run_ids(kiln) == [int(kept)]
    assert _kiln_run_ids(kiln, project=experiment_id) == [int(kept)]
    assert _kiln_run_ids(kiln, project=experiment_id, query="state = cancelled") == []
    assert _kiln_api(kiln, f"/runs/{doomed}").status_code == 404
    assert _kiln_api(kiln, f"/runs/{doomed}/metrics/history", key="loss").status_code == 404
    assert not Run.objects.filter(id=int(doomed)).exists() and Run.all_objects.filter(id=int(doomed)).exists()
    assert Project.objects.get(id=int(experiment_id)).runs.count() == 1

    client.restore_run(doomed)
    assert client.get_run(doomed).info.lifecycle_stage == "active"
    assert search(ViewType.ACTIVE_ONLY) == ["doomed", "kept"] and search(ViewType.DELETED_ONLY) == []
    assert _kiln_run_ids(kiln, project=experiment_id) == [int(doomed), int(kept)]
    assert _kiln_api(kiln, f"/runs/{doomed}").json()["state"] == "cancelled"
    numbers = list(Run.objects.filter(project_id=int(experiment_id)).values_list("number", flat=True))
    assert sorted(numbers) == [1, 2]

    new = client.create_run(experiment_id).info.run_id  # numbers stay unique: a deleted run keeps its number
    client.delete_run(new)
    assert Run.all_objects.get(id=int(new)).number == 3


def test_a_deleted_experiment_is_kept_searched_by_view_type_its_name_taken_and_restored(kiln):
    client = MlflowClient()
    first = client.create_experiment("vision")
    other = client.create_experiment("nlp")
    run_id = client.create_run(first).info.run_id
    earlier = client.create_run(first).info.run_id
    client.set_terminated(earlier)
    client.delete_run(earlier)  # deleted on its own, before its experiment

    client.delete_experiment(first)
    experiment = client.get_experiment(first)
    assert experiment.lifecycle_stage == "deleted"
    assert client.get_experiment_by_name("vision").lifecycle_stage == "deleted"
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"  # MLflow deletes the experiment's runs with it

    def names(view: int) -> list[str]:
        return sorted(e.name for e in client.search_experiments(view_type=view))

    assert names(ViewType.ACTIVE_ONLY) == ["nlp"]
    assert names(ViewType.DELETED_ONLY) == ["vision"]
    assert names(ViewType.ALL) == ["nlp", "vision"]
    assert sorted(r.info.run_id for r in client.search_runs([first], run_view_type=ViewType.DELETED_ONLY)) == sorted(
        [run_id, earlier])
    with pytest.raises(MlflowException, match=r"RESOURCE_ALREADY_EXISTS.*deleted state"):
        client.create_experiment("vision")
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.create_run(first)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.set_experiment_tag(first, "k", "v")
    with pytest.raises(MlflowException, match="Cannot set a deleted experiment"):
        mlflow.set_experiment("vision")
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.delete_experiment(first)  # MLflow deletes an active experiment only
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.restore_experiment(other)  # ... and restores a deleted one only
    assert _kiln_api(kiln, f"/projects/{first}").status_code == 404
    assert [p["id"] for p in _kiln_api(kiln, "/projects").json()["items"]] == [int(other)]
    assert _kiln_run_ids(kiln) == []

    with pytest.raises(MlflowException, match="deleted experiment: restore that first"):
        client.restore_run(run_id)
    client.restore_experiment(first)
    assert client.get_experiment(first).lifecycle_stage == "active"
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert client.get_run(earlier).info.lifecycle_stage == "deleted"  # as MLflow: only the runs its deletion took
    assert names(ViewType.ACTIVE_ONLY) == ["nlp", "vision"]
    assert _kiln_run_ids(kiln, project=first) == [int(run_id)]


def test_a_run_kiln_still_schedules_is_not_deleted_nor_its_experiment(kiln):
    client = MlflowClient()
    experiment_id = client.create_experiment("scheduled")
    project = Project.objects.get(id=int(experiment_id))
    queued = run_submit(user=kiln.user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]
    with pytest.raises(MlflowException, match="only a finished run can be deleted"):
        client.delete_run(str(queued.id))
    with pytest.raises(MlflowException, match="cancel them first"):
        client.delete_experiment(experiment_id)
    assert client.get_run(str(queued.id)).info.lifecycle_stage == "active"
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_values_logged_at_one_step_are_all_kept_and_kiln_charts_the_last(kiln):
    mlflow.set_experiment("repeats")
    with mlflow.start_run() as active:
        for value in (5.0, 4.0, 3.0, 2.0, 1.0):
            mlflow.log_metric("loss", value)  # no step: MLflow logs each at step 0
        mlflow.log_metrics({"acc": 0.5}, step=1)
    run_id = active.info.run_id
    client = MlflowClient()
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, v) for v in (5.0, 4.0, 3.0, 2.0, 1.0)]
    assert [m.timestamp for m in history] == sorted(m.timestamp for m in history)
    assert client.get_run(run_id).data.metrics == {"loss": 1.0, "acc": 0.5}
    chart = _kiln_api(kiln, f"/runs/{run_id}/metrics/history", key="loss").json()
    assert (chart["steps"], chart["values"], chart["total"]) == ([0], [1.0], 1)

    # one batch that logs a step twice keeps both; the REST API pages over every value
    client.log_batch(run_id, metrics=[mlflow.entities.Metric("acc", 0.6, 1_700_000_000_000, 1),
                                      mlflow.entities.Metric("acc", 0.7, 1_700_000_000_001, 1)])
    assert [m.value for m in client.get_metric_history(run_id, "acc")] == [0.6, 0.7, 0.5]  # by step, then time
    pages, token = [], None
    while True:
        body = requests.get(f"{kiln.url}/api/2.0/mlflow/metrics/get-history", timeout=30,
                            params={"run_id": run_id, "metric_key": "loss", "max_results": 2,
                                    **({"page_token": token} if token else {})},
                            headers={"Authorization": f"Bearer {kiln.token}"}).json()
        pages.append([m["value"] for m in body["metrics"]])
        token = body.get("next_page_token")
        if not token:
            break
    assert pages == [[5.0, 4.0], [3.0, 2.0], [1.0]]

    Run.all_objects.filter(id=int(run_id)).update(deleted_at=timezone.now() - timedelta(days=31))
    assert deleted_purge() == 1
    assert not ReplacedMetric.objects.exists() and not Metric.objects.exists()  # deleting the run deletes them


def test_the_purge_deletes_for_good_only_what_was_deleted_past_the_retention(kiln, settings, tmp_path):
    client = MlflowClient()
    experiment_id = client.create_experiment("kept")
    old = client.create_run(experiment_id).info.run_id
    (tmp_path / "weights.bin").write_bytes(b"w" * 10)
    client.log_artifact(old, str(tmp_path / "weights.bin"))
    recent = client.create_run(experiment_id).info.run_id
    gone_experiment = client.create_experiment("gone")
    in_gone = client.create_run(gone_experiment).info.run_id
    for run_id in (old, recent):
        client.delete_run(run_id)
    client.delete_experiment(gone_experiment)
    stored = Artifact.objects.get(run_id=int(old)).storage_path
    assert default_storage.exists(stored)
    now = timezone.now()
    assert deleted_purge(now=now + timedelta(days=29)) == 0  # KILN_DELETED_RETENTION_DAYS defaults to 30
    settings.CONFIG = dataclasses.replace(settings.CONFIG, deleted_retention_days=7.0)
    Run.all_objects.filter(id=int(recent)).update(deleted_at=now + timedelta(days=5))  # deleted later
    assert deleted_purge(now=now + timedelta(days=8)) == 2  # `old`, and `in_gone` with its project
    assert sorted(Run.all_objects.values_list("id", flat=True)) == [int(recent)]
    assert not Project.all_objects.filter(id=int(gone_experiment)).exists()
    assert Project.objects.filter(id=int(experiment_id)).exists()
    assert not default_storage.exists(stored) and not Artifact.objects.exists()
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_run(in_gone)
    client.restore_run(recent)
    assert client.get_run(recent).info.lifecycle_stage == "active"
