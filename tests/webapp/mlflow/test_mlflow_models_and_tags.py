"""MLflow 3's logged models and experiment tags through the real MLflow client, against a live Kiln."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webapp.experiments.models import Artifact, Run
from webapp.mlflow.models import ExperimentTag, LoggedModel
from webapp.projects.models import Project

from ..factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.models import Model  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def _log_model(client: MlflowClient, tmp_path: Path, run_id: str, *, name: str, step: int = 0,
               tags: dict[str, str] | None = None) -> str:
    """What `mlflow.<flavor>.log_model` (Model.log) asks of the server, call for call, with a JSON "flavor".

    NOTE: Model.log itself imports pandas, which mlflow-skinny does not bring.
    """
    run = client.get_run(run_id)
    model = client.create_logged_model(run.info.experiment_id, name=name, source_run_id=run_id,
                                       params=run.data.params, tags=tags)
    client.log_outputs(run_id, [mlflow.entities.LoggedModelOutput(model.model_id, step=step)])
    folder = tmp_path / model.model_id
    folder.mkdir()
    (folder / "weights.json").write_text(json.dumps({"w": [1, 2, 3]}))
    mlmodel = Model(artifact_path=model.artifact_location, run_id=run_id, model_id=model.model_id)
    mlmodel.save(str(folder / "MLmodel"))
    client.log_model_artifacts(model.model_id, str(folder))
    client._tracking_client.store.record_logged_model(run_id, mlmodel)  # MLflow's LogModel (runs/log-model)
    return model.model_id


def test_log_model_in_a_run_is_a_logged_model_whose_files_are_run_artifacts(kiln, tmp_path):
    mlflow.set_experiment("models")
    with mlflow.start_run() as active:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("acc", 0.93, step=2)
        run_id = active.info.run_id
        model_id = _log_model(MlflowClient(), tmp_path, run_id, name="net", step=2, tags={"stage": "dev"})

    client = MlflowClient()
    model = client.get_logged_model(model_id)
    run = Run.objects.get(id=int(run_id))
    assert (model.name, model.source_run_id, model.experiment_id) == ("net", run_id, str(run.project_id))
    assert model.artifact_location == f"mlflow-artifacts:/{run.project_id}/{run_id}/artifacts/models/{model_id}"
    assert model.params == {"lr": "0.1"} and model.tags["stage"] == "dev"
    assert [(m.key, m.value, m.step) for m in model.metrics] == [("acc", 0.93, 2)]
    names = set(Artifact.objects.filter(run=run).values_list("name", flat=True))
    assert {f"models/{model_id}/MLmodel", f"models/{model_id}/weights.json"} <= names
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [model_id]
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert [(entry["run_id"], entry["artifact_path"]) for entry in history] == [(run_id, model.artifact_location)]

    for uri in (f"models:/{model_id}", f"runs:/{run_id}/net"):
        local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / uri.split(":")[0])))
        assert json.loads((local / "weights.json").read_text()) == {"w": [1, 2, 3]}
    assert {f.path for f in client.list_logged_model_artifacts(model_id)} >= {"MLmodel", "weights.json"}

    found = client.search_logged_models([str(run.project_id)], filter_string="name = 'net' AND params.lr = '0.1'")
    assert [m.model_id for m in found] == [model_id]
    assert not client.search_logged_models([str(run.project_id)], filter_string="metrics.acc > 0.95")
    client.set_logged_model_tags(model_id, {"owner": "grace"})
    client.delete_logged_model_tag(model_id, "stage")
    assert client.get_logged_model(model_id).tags == {"owner": "grace"} | {
        k: v for k, v in model.tags.items() if k.startswith("mlflow.")}
    client.finalize_logged_model(model_id, mlflow.entities.LoggedModelStatus.READY)
    assert LoggedModel.objects.get(model_id=model_id).status == "LOGGED_MODEL_READY"

    client.delete_logged_model(model_id)
    assert not Artifact.objects.filter(run=run, name__startswith="models/").exists()
    with pytest.raises(MlflowException) as missing:
        client.get_logged_model(model_id)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_an_outsider_cannot_see_a_logged_model_and_a_viewer_cannot_change_it(kiln, monkeypatch, tmp_path):
    from webapp.accounts.tokens import token_create

    team = TeamFactory(slug="lab")
    MembershipFactory(team=team, user=kiln.user, role="editor")
    mlflow.set_experiment("lab/shared")
    with mlflow.start_run() as active:
        model_id = _log_model(MlflowClient(), tmp_path, active.info.run_id, name="net")
    viewer, outsider = UserFactory(), UserFactory()
    MembershipFactory(team=team, user=viewer, role="viewer")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_create(user=outsider, name="t")[1])
    with pytest.raises(MlflowException) as hidden:
        MlflowClient().get_logged_model(model_id)
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_create(user=viewer, name="t")[1])
    assert MlflowClient().get_logged_model(model_id).name == "net"
    with pytest.raises(MlflowException) as refused:
        MlflowClient().set_logged_model_tags(model_id, {"x": "y"})
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert LoggedModel.objects.get(model_id=model_id).tags.get("x") is None


def test_a_model_outside_a_run_is_refused_with_a_clear_error(kiln):
    experiment_id = mlflow.set_experiment("loose").experiment_id
    with pytest.raises(MlflowException) as refused:
        MlflowClient().create_logged_model(experiment_id, name="net")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE" and "start_run" in refused.value.message
    assert not LoggedModel.objects.exists()


def test_experiment_tags_are_set_returned_searched_and_deleted(kiln):
    client = MlflowClient()
    experiment_id = client.create_experiment("tagged", tags={"team": "vision", "mlflow.note.content": "About it"})
    client.set_experiment_tag(experiment_id, "priority", "high")
    client.set_experiment_tag(experiment_id, "team", "nlp")
    project = Project.objects.get(id=int(experiment_id))
    assert project.description == "About it"
    assert dict(ExperimentTag.objects.filter(project=project).values_list("name", "value")) == {
        "team": "nlp", "priority": "high"}
    expected = {"team": "nlp", "priority": "high", "mlflow.note.content": "About it"}
    assert client.get_experiment(experiment_id).tags == expected
    assert client.get_experiment_by_name("tagged").tags == expected
    assert [e.tags for e in client.search_experiments(filter_string="name = 'tagged'")] == [expected]

    client.delete_experiment_tag(experiment_id, "priority")
    assert "priority" not in client.get_experiment(experiment_id).tags
    with pytest.raises(MlflowException) as missing:
        client.delete_experiment_tag(experiment_id, "priority")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as too_long:
        client.set_experiment_tag(experiment_id, "k" * 251, "v")
    assert too_long.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_viewer_cannot_tag_an_experiment(kiln):
    team = TeamFactory(slug="lab")
    project = ProjectFactory(owner_user=None, team=team, slug="shared", name="shared")
    MembershipFactory(team=team, user=kiln.user, role="viewer")
    with pytest.raises(MlflowException) as refused:
        MlflowClient().set_experiment_tag(str(project.id), "k", "v")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert not ExperimentTag.objects.exists()


def test_runs_are_searched_by_artifact_uri_and_by_their_datasets(kiln):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    experiment_id = mlflow.set_experiment("data").experiment_id
    client = MlflowClient()
    runs = []
    for name, context in (("mnist", "train"), ("cifar", "eval")):
        with mlflow.start_run(run_name=name) as active:
            client.log_inputs(active.info.run_id, [DatasetInput(
                Dataset(name=name, digest=f"{name}-digest", source_type="local", source=f"/data/{name}"),
                tags=[InputTag("mlflow.data.context", context)])])
            runs.append(active.info)

    def search(filter_string: str) -> list[str]:
        return sorted(run.info.run_name for run in client.search_runs([experiment_id], filter_string))

    assert search("datasets.name = 'mnist'") == ["mnist"]
    assert search("datasets.digest LIKE 'cif%'") == ["cifar"]
    assert search("datasets.context IN ('train', 'eval')") == ["cifar", "mnist"]
    assert search("datasets.context = 'eval' AND datasets.name != 'mnist'") == ["cifar"]
    assert search(f"attributes.artifact_uri = '{runs[0].artifact_uri}'") == ["mnist"]
    assert search(f"attributes.artifact_uri LIKE 'mlflow-artifacts:/{experiment_id}/%'") == ["cifar", "mnist"]
    with pytest.raises(MlflowException) as bad:
        client.search_runs([experiment_id], "datasets.size = '3'")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
