"""The rest of the MLflow API through the real client: experiments, tags, paged history, artifacts; Kiln's side of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from scheduler.recovery import mark_lost
from webapp.experiments.models import Artifact, Run, RunTag
from webapp.projects.models import Project

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def test_experiments_create_get_search_update_and_note(kiln):
    client = MlflowClient()
    first = client.create_experiment("Vision Models", tags={"mlflow.note.content": "CNNs"})
    client.create_experiment("nlp")
    with pytest.raises(MlflowException, match="RESOURCE_ALREADY_EXISTS"):
        client.create_experiment("grace/vision-models")
    experiment = client.get_experiment_by_name("Vision Models")
    assert experiment.experiment_id == first and experiment.tags == {"mlflow.note.content": "CNNs"}
    assert client.get_experiment_by_name("grace/Vision Models").experiment_id == first
    assert Project.objects.get(id=int(first)).slug == "vision-models"
    names = [e.name for e in client.search_experiments(filter_string="name LIKE 'Vision%'")]
    assert names == ["Vision Models"]
    assert sorted(e.name for e in client.search_experiments(order_by=["name ASC"])) == ["Vision Models", "nlp"]
    client.rename_experiment(first, "Vision")
    client.set_experiment_tag(first, "mlflow.note.content", "all CNNs")
    project = Project.objects.get(id=int(first))
    assert (project.name, project.slug, project.description) == ("Vision", "vision-models", "all CNNs")
    client.set_experiment_tag(first, "owner", "x")
    assert client.get_experiment(first).tags == {"mlflow.note.content": "all CNNs", "owner": "x"}
    client.delete_experiment(first)  # kept, restorable, as MLflow keeps it (test_mlflow_soft_delete)
    assert client.get_experiment(first).lifecycle_stage == "deleted"
    assert not Project.objects.filter(id=int(first)).exists() and Project.all_objects.filter(id=int(first)).exists()


def test_tags_history_paging_inputs_and_artifact_delete(kiln, tmp_path):
    client = MlflowClient()
    experiment_id = client.create_experiment("tags")
    run = client.create_run(experiment_id, run_name="first", tags={"mlflow.user": "grace", "purpose": "test"})
    run_id = run.info.run_id
    assert Run.objects.get(id=int(run_id)).state == "running"
    client.set_tag(run_id, "purpose", "changed")
    client.delete_tag(run_id, "mlflow.user")
    with pytest.raises(MlflowException, match="INVALID_PARAMETER_VALUE"):
        client.delete_tag(run_id, "never-set")
    client.set_tag(run_id, "mlflow.runName", "renamed")
    assert dict(RunTag.objects.filter(run_id=int(run_id)).values_list("name", "value")) == {"purpose": "changed"}
    assert Run.objects.get(id=int(run_id)).name == "renamed"

    for step in range(30):
        client.log_metric(run_id, "loss", float(step), step=step)
    client.log_metric(run_id, "loss", -1.0, step=29)  # the latest value at a step is the run's; history keeps both
    history = client.get_metric_history(run_id, "loss")
    assert [m.value for m in history] == [float(s) for s in range(30)] + [-1.0]
    assert client.get_run(run_id).data.metrics["loss"] == -1.0
    # the client pages only against Databricks; the REST API pages here
    answer = requests.get(f"{kiln.url}/api/2.0/mlflow/metrics/get-history", timeout=30,
                          params={"run_id": run_id, "metric_key": "loss", "max_results": 20},
                          headers={"Authorization": f"Bearer {kiln.token}"})
    body = answer.json()
    assert len(body["metrics"]) == 20 and body["next_page_token"]
    rest = requests.get(f"{kiln.url}/api/2.0/mlflow/metrics/get-history", timeout=30,
                        params={"run_id": run_id, "metric_key": "loss", "page_token": body["next_page_token"]},
                        headers={"Authorization": f"Bearer {kiln.token}"}).json()
    assert [m["step"] for m in rest["metrics"]] == [*range(20, 30), 29] and "next_page_token" not in rest

    dataset = mlflow.entities.Dataset(name="digits", digest="abc123", source_type="local", source="/data/digits")
    client.log_inputs(run_id, [mlflow.entities.DatasetInput(dataset, tags=[mlflow.entities.InputTag("context", "train")])])
    assert [d.dataset.name for d in client.get_run(run_id).inputs.dataset_inputs] == ["digits"]

    (tmp_path / "a.txt").write_text("a")
    client.log_artifact(run_id, str(tmp_path / "a.txt"), "folder")
    client.log_artifact(run_id, str(tmp_path / "a.txt"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    client.log_figure(run_id, figure, "plots/curve.png")
    plt.close(figure)
    assert Artifact.objects.get(run_id=int(run_id), name="plots/curve.png").size > 1000
    headers = {"Authorization": f"Bearer {kiln.token}"}
    base = f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts"
    assert requests.delete(f"{base}/folder", headers=headers, timeout=30).status_code == 200
    assert sorted(Artifact.objects.filter(run_id=int(run_id)).values_list("name", flat=True)) == ["a.txt", "plots/curve.png"]
    missing = requests.get(f"{base}/folder/a.txt", headers=headers, timeout=30)
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    other = requests.get(f"{kiln.url}/api/2.0/mlflow-artifacts/artifacts/999/{run_id}/artifacts/a.txt", headers=headers, timeout=30)
    assert other.status_code == 404

    client.set_terminated(run_id, "KILLED")
    assert Run.objects.get(id=int(run_id)).state == "cancelled"
    with pytest.raises(MlflowException, match="INVALID_PARAMETER_VALUE"):
        client.set_terminated(run_id, "FINISHED")


def test_the_run_page_says_external_and_the_scheduler_never_marks_it_lost(kiln, client):
    mlflow.set_experiment("pages")
    run = MlflowClient().create_run(mlflow.get_experiment_by_name("pages").experiment_id, run_name="outside")
    Run.objects.filter(id=int(run.info.run_id)).update(started_at=timezone.now() - timedelta(days=3))
    assert mark_lost(worker_timeout_seconds=1) == 0
    assert Run.objects.get(id=int(run.info.run_id)).state == "running"
    client.force_login(kiln.user)
    page = client.get(f"/runs/{run.info.run_id}/", follow=True)
    assert page.status_code == 200
    text = page.content.decode()
    assert "external · logged by mlflow, not run by Kiln" in text and "Re-run" not in text
    table = client.get(f"/p/{run.info.experiment_id}/")  # the project's run table lists it like any run
    assert table.status_code == 200 and "outside" in table.content.decode()


def test_the_api_rate_limit_applies_and_a_session_cookie_is_no_credential(kiln, settings, client):
    settings.KILN_API_RATE_LIMIT = (3, 60)
    headers = {"Authorization": f"Bearer {kiln.token}"}
    answers = [requests.post(f"{kiln.url}/api/2.0/mlflow/experiments/search", json={}, headers=headers, timeout=30)
               for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error_code"] == "RESOURCE_EXHAUSTED" and int(answers[-1].headers["Retry-After"]) > 0

    client.force_login(kiln.user)  # a signed-in browser's cookie does not authenticate (so no CSRF hole)
    answer = client.post("/api/2.0/mlflow/experiments/create", {"name": "via-cookie"}, content_type="application/json")
    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"
    assert not Project.objects.filter(slug="via-cookie").exists()
