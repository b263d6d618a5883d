"""The real MLflow client (mlflow-skinny) logging into a live Kiln, unchanged: what it logs is Kiln's own runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from webapp.accounts.tokens import token_create
from webapp.experiments.models import Artifact, Metric, Run
from webapp.projects.models import Project

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_training_script_logs_into_kiln_unchanged(kiln, tmp_path):
    experiment = mlflow.set_experiment("digits")
    project = Project.objects.get(owner_user=kiln.user, slug="digits")
    assert experiment.experiment_id == str(project.id)
    assert experiment.artifact_location == f"mlflow-artifacts:/{project.id}"

    with mlflow.start_run(run_name="baseline") as active:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"batch_size": 32, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"accuracy": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"stage": "dev", "seed": 7})
        (tmp_path / "notes.txt").write_text("hello from mlflow")
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifact(str(tmp_path / "notes.txt"), artifact_path="docs")
        mlflow.log_dict({"layers": [64, 10]}, "config/model.json")
        run_id = active.info.run_id
    client = MlflowClient()
    client.log_batch(run_id, metrics=[mlflow.entities.Metric("val_loss", 0.5, 1_700_000_000_000, 3)],
                     params=[mlflow.entities.Param("epochs", "3")], tags=[mlflow.entities.RunTag("k", "v")])

    run = Run.objects.get(id=int(run_id))
    assert (run.kind, run.state, run.name, run.project_id) == ("external", "succeeded", "baseline", project.id)
    assert run.params == {"lr": 0.01, "batch_size": 32, "optimizer": "adam", "epochs": 3}
    assert list(Metric.objects.filter(run=run, key="loss").order_by("step").values_list("step", "value")) == [
        (s, 1.0 / (s + 1)) for s in range(5)]
    assert Metric.objects.get(run=run, key="val_loss").wall_time == 1_700_000_000.0
    assert {a.name for a in Artifact.objects.filter(run=run)} == {"notes.txt", "docs/notes.txt", "config/model.json"}

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "baseline"
    assert got.info.artifact_uri == f"mlflow-artifacts:/{project.id}/{run_id}/artifacts"
    assert got.data.params == {"lr": "0.01", "batch_size": "32", "optimizer": "adam", "epochs": "3"}
    assert got.data.metrics == {"loss": 0.2, "accuracy": 0.9, "f1": 0.8, "val_loss": 0.5}
    assert got.data.tags["team"] == "vision" and got.data.tags["seed"] == "7" and got.data.tags["mlflow.runName"] == "baseline"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert all(m.timestamp > 1_600_000_000_000 for m in history)

    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [
        ("config", True), ("docs", True), ("notes.txt", False)]
    assert [f.path for f in client.list_artifacts(run_id, "docs")] == ["docs/notes.txt"]
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config/model.json", dst_path=str(tmp_path / "dl"))
    assert json.loads(Path(local).read_text()) == {"layers": [64, 10]}
    whole = client.download_artifacts(run_id, "", str(tmp_path / "all"))
    assert (Path(whole) / "docs" / "notes.txt").read_text() == "hello from mlflow"

    # the same run through Kiln's own API
    answer = requests.get(f"{kiln.url}/api/runs/{run_id}", headers={"Authorization": f"Bearer {kiln.token}"}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["kind"] == "external" and answer.json()["params"]["lr"] == 0.01


def test_a_run_that_raises_is_failed_and_searches_filter_and_order(kiln):
    mlflow.set_experiment("sweep")
    for lr, acc in ((0.1, 0.7), (0.01, 0.9), (0.001, 0.8)):
        with mlflow.start_run():
            mlflow.log_param("lr", lr)
            mlflow.log_metric("acc", acc)
            mlflow.set_tag("family", "mlp" if lr > 0.005 else "cnn")
    with pytest.raises(RuntimeError), mlflow.start_run() as crashed:
        mlflow.log_param("lr", 1.0)
        raise RuntimeError("diverged")
    client = MlflowClient()
    assert client.get_run(crashed.info.run_id).info.status == "FAILED"
    assert Run.objects.get(id=int(crashed.info.run_id)).state == "failed"

    experiment_id = mlflow.get_experiment_by_name("sweep").experiment_id

    def search(filter_string: str = "", order_by: list[str] | None = None) -> list[str]:
        runs = client.search_runs([experiment_id], filter_string, order_by=order_by)
        return [run.data.params.get("lr") for run in runs]

    assert search("metrics.acc > 0.75", ["metrics.acc DESC"]) == ["0.01", "0.001"]
    assert search("params.lr = '0.1'") == ["0.1"]
    assert search("tags.family = 'cnn'") == ["0.001"]
    assert search("params.lr IN ('0.1', '0.001')", ["params.lr ASC"]) == ["0.001", "0.1"]
    assert search("attributes.status = 'FAILED'") == ["1.0"]
    assert search("metrics.acc >= 0.7 AND tags.family LIKE 'ml%'", ["metrics.acc ASC"]) == ["0.1", "0.01"]
    assert search("tags.family ILIKE 'CN%'") == ["0.001"]
    assert search("attributes.status != 'FAILED'", ["metrics.acc ASC"]) == ["0.1", "0.001", "0.01"]
    page = client.search_runs([experiment_id], "", order_by=["metrics.acc DESC"], max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_runs([experiment_id], "", order_by=["metrics.acc DESC"], max_results=2, page_token=page.token)
    assert [r.data.params["lr"] for r in [*page, *rest]] == ["0.01", "0.001", "0.1", "1.0"]
    with pytest.raises(MlflowException, match=r"INVALID_PARAMETER_VALUE|Invalid"):
        client.search_runs([experiment_id], "metrics.acc >> 1")

    doomed = client.search_runs([experiment_id], "params.lr = '0.1'")[0].info.run_id
    client.delete_run(doomed)  # soft: kept and restorable, out of Kiln's views (test_mlflow_soft_delete)
    assert not Run.objects.filter(id=int(doomed)).exists()
    assert client.get_run(doomed).info.lifecycle_stage == "deleted"
    assert sorted(search()) == ["0.001", "0.01", "1.0"]


def test_an_over_limit_batch_is_refused_with_mlflows_error_and_nothing_is_stored(kiln):
    mlflow.set_experiment("limits")
    run = MlflowClient().create_run(mlflow.get_experiment_by_name("limits").experiment_id)
    headers = {"Authorization": f"Bearer {kiln.token}"}
    metrics = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)]
    answer = requests.post(f"{kiln.url}/api/2.0/mlflow/runs/log-batch", headers=headers, timeout=30,
                           json={"run_id": run.info.run_id, "metrics": metrics, "params": [{"key": "a", "value": "1"}]})
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE" and "at most 1000 metrics" in answer.json()["message"]
    params = [{"key": f"p{i}", "value": "1"} for i in range(101)]
    answer = requests.post(f"{kiln.url}/api/2.0/mlflow/runs/log-batch", headers=headers, timeout=30,
                           json={"run_id": run.info.run_id, "params": params})
    assert answer.status_code == 400 and "at most 100 params" in answer.json()["message"]
    # a bad entry anywhere in a batch stores none of it
    answer = requests.post(f"{kiln.url}/api/2.0/mlflow/runs/log-batch", headers=headers, timeout=30, json={
        "run_id": run.info.run_id, "metrics": [{"key": "ok", "value": 1, "timestamp": 1, "step": 0}],
        "params": [{"key": "p", "value": "1"}], "tags": [{"key": "x" * 300, "value": "v"}]})
    assert answer.status_code == 400 and answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    stored = Run.objects.get(id=int(run.info.run_id))
    assert stored.params == {} and not Metric.objects.filter(run=stored).exists()
    # a changed param is refused, as in MLflow
    MlflowClient().log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        MlflowClient().log_param(run.info.run_id, "lr", "0.2")


def test_bad_tokens_outsiders_and_viewers_are_refused(kiln, monkeypatch):
    owner = UserFactory(username="ada")
    secret = ProjectFactory(owner_user=owner, slug="secret", name="secret")
    team = TeamFactory(slug="lab")
    shared = ProjectFactory(owner_user=None, team=team, slug="shared", name="shared")
    MembershipFactory(team=team, user=kiln.user, role="viewer")

    client = MlflowClient()
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_experiment(str(secret.id))
    with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST"):
        client.create_run(str(secret.id))
    assert mlflow.get_experiment_by_name("ada/secret") is None
    assert client.get_experiment(str(shared.id)).name == "lab/shared"
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        client.create_run(str(shared.id))
    with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
        mlflow.set_experiment("lab/new-one")  # a viewer does not create the team's projects

    for env in ({"MLFLOW_TRACKING_TOKEN": "kiln_not-a-real-token"},
                {"MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": kiln.token}):
        with monkeypatch.context() as patch:
            patch.delenv("MLFLOW_TRACKING_TOKEN")
            for name, value in env.items():
                patch.setenv(name, value)
            with pytest.raises(MlflowException, match=r"UNAUTHENTICATED|401"):
                MlflowClient().search_experiments()
    answer = requests.get(f"{kiln.url}/api/2.0/mlflow/experiments/get?experiment_id=1", timeout=30)
    assert answer.status_code == 401 and answer.json()["error_code"] == "UNAUTHENTICATED"
    answer = requests.get(f"{kiln.url}/api/2.0/mlflow/no-such-endpoint", timeout=30)
    assert answer.status_code == 404 and answer.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_basic_auth_with_username_and_token(kiln, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "grace")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", token_create(user=kiln.user, name="basic")[1])
    with mlflow.start_run() as run:  # no experiment set: MLflow's Default, the caller's own "default" project
        mlflow.log_metric("x", 1.0)
    assert Run.objects.get(id=int(run.info.run_id)).project.slug == "default"
