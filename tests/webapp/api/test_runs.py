"""Submitting, reading, cancelling, re-running and deleting runs; bad input changes nothing."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from webapp.api import runs as runs_api
from webapp.experiments.models import Artifact, Run, RunState
from webapp.experiments.results import artifact_store

SCRIPT = b"import engine.track as track\ntrack.log({'loss': 1.0}, step=0)\n"


def _file(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _counts(world) -> tuple:
    world.project.refresh_from_db()
    return Run.objects.count(), world.project.run_counter


def test_json_submit_queues_a_recipe_run_with_overrides(world):
    response = world.api("editor").post("/api/runs", {
        "project": world.path, "spec": {"recipe": {"model": "mlp"}, "params": {"note": "x"}, "tags": ["baseline"]},
        "gpus": 2, "params": {"seed_offset": 3},
    })
    assert response.status_code == 201, response.content
    run = response.json()["runs"][0]
    assert (run["number"], run["state"], run["kind"], run["gpus"], run["owner"]) == (1, "queued", "recipe", 2, world.users["editor"].username)
    assert run["params"]["seed_offset"] == 3 and run["params"]["note"] == "x" and run["tags"] == ["baseline"]
    assert run["project"] == world.path and run["spec"]["resources"]["gpus"] == 2


def test_a_run_asks_for_memory_in_its_spec_and_shows_the_limit_it_got(world, settings):
    response = world.api("editor").post("/api/runs", {
        "project": world.path, "spec": {"recipe": {"model": "mlp"}, "resources": {"memory_gb": 2.5}}})
    assert response.status_code == 201, response.content
    assert response.json()["runs"][0]["memory_gb"] == 2.5
    response = world.api("editor").post("/api/runs", {"project": world.path, "spec": {"recipe": {"model": "mlp"}}})
    run_id = response.json()["runs"][0]["id"]
    assert world.api("editor").get(f"/api/runs/{run_id}").json()["memory_gb"] == settings.CONFIG.run_memory_gb


def test_a_sweep_submits_one_run_per_point(world):
    spec = {"recipe": {"model": "mlp"}, "sweep": {"parameters": {"optimizer.lr": {"values": [0.1, 0.01, 0.001]}}}}
    response = world.api("owner").post("/api/runs", {"project": world.project.id, "spec": spec})
    assert response.status_code == 201
    body = response.json()
    assert body["sweep"] is not None and [r["params"]["optimizer.lr"] for r in body["runs"]] == [0.1, 0.01, 0.001]


def test_multipart_submit_with_a_python_file_and_yaml_spec(world):
    response = world.api("owner").multipart("/api/runs/upload", {
        "project": world.path, "spec": "name: trial\nparams:\n  lr: 0.01\n", "params": '{"batch": 32}', "gpus": "1",
        "code": _file("train.py", SCRIPT),
    })
    assert response.status_code == 201, response.content
    run = response.json()["runs"][0]
    assert (run["kind"], run["entrypoint"], run["name"], run["gpus"]) == ("code", "train.py", "trial", 1)
    assert run["params"] == {"lr": 0.01, "batch": 32}
    with default_storage.open(Run.objects.get().code_path) as handle:
        assert handle.read() == SCRIPT


def test_multipart_submit_with_a_zip_project_and_json_spec(world):
    data = _zip({"main.py": SCRIPT, "lib/model.py": b"x = 1\n"})
    response = world.api("owner").multipart("/api/runs/upload", {
        "project": world.path, "spec": '{"params": {"lr": 0.1}}', "code": _file("project.zip", data),
    })
    assert response.status_code == 201, response.content
    assert response.json()["runs"][0]["entrypoint"] == "main.py"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"recipe": {"model": "mlp", "colour": "red"}}, "recipe.colour"),
        ({"recipe": {"model": "transformer9000"}}, "recipe.model"),
        ({"recipe": {"model": "mlp", "epochs": 0}}, "recipe.epochs"),
        ({"recipe": {"model": "mlp"}, "resources": {"gpus": -1}}, "resources.gpus"),
        ({"recipe": {"model": "mlp"}, "resources": {"memory_gb": -2}}, "resources.memory_gb"),
        ({"params": {"lr": 0.1}}, "recipe"),  # no code and no recipe
        ({"recipe": {"model": "mlp"}, "name": "a\x00b"}, "name"),
        ({"recipe": {"model": "mlp"}, "sweep": {"parameters": {"colour": {"values": [1]}}}}, "sweep.parameters.colour"),
    ],
)
def test_an_invalid_spec_gets_422_naming_the_field_and_stores_nothing(world, spec, field):
    before = _counts(world)
    response = world.api("owner").post("/api/runs", {"project": world.path, "spec": spec})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_spec" and field in [f["field"] for f in body["fields"]], body
    assert _counts(world) == before


@pytest.mark.parametrize(
    ("filename", "data", "spec", "field"),
    [
        ("evil.zip", _zip({"../escape.py": b"x", "main.py": b"x"}), "", "code"),
        ("abs.zip", _zip({"/etc/passwd": b"x", "main.py": b"x"}), "", "code"),
        ("noentry.zip", _zip({"other.py": b"x"}), "", "entrypoint"),
        ("notes.txt", b"hello", "", "code"),
        ("broken.zip", b"PK\x03\x04 not really", "", "code"),
        ("train.py", SCRIPT, "params: [unclosed", "spec"),
        ("train.py", SCRIPT, "- a list\n- not a mapping\n", "spec"),
        ("train.py", SCRIPT, "recipe: {model: mlp}", "recipe"),  # code and a recipe
        ("train.py", SCRIPT, "params: {lr: .inf}", "params.lr"),
    ],
)
def test_bad_uploads_get_422_naming_the_field_and_store_nothing(world, tmp_path, filename, data, spec, field):
    before = _counts(world)
    response = world.api("owner").multipart("/api/runs/upload", {"project": world.path, "spec": spec, "code": _file(filename, data)})
    assert response.status_code == 422, response.content
    assert field in [f["field"] for f in response.json()["fields"]], response.json()
    assert _counts(world) == before
    assert not (tmp_path / "storage" / "code").exists()


def test_oversized_code_gets_413_and_stores_nothing(world, monkeypatch):
    monkeypatch.setattr(runs_api, "MAX_CODE_BYTES", 100)
    before = _counts(world)
    response = world.api("owner").multipart("/api/runs/upload", {"project": world.path, "code": _file("big.py", b"#" * 101)})
    assert response.status_code == 413 and response.json()["fields"][0]["field"] == "code"
    assert _counts(world) == before


def test_bad_params_text_gets_422(world):
    response = world.api("owner").multipart(
        "/api/runs/upload", {"project": world.path, "params": "[1, 2]", "code": _file("t.py", SCRIPT)}
    )
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "params"


def test_unknown_project_gets_404(world):
    response = world.api("owner").post("/api/runs", {"project": "olive/nope", "spec": {"recipe": {"model": "mlp"}}})
    assert response.status_code == 404


def test_malformed_json_body_gets_a_4xx_json_error(world):
    response = world.api("owner").client.post(
        "/api/runs", "{not json", content_type="application/json", headers={"Authorization": f"Bearer {world.tokens['owner']}"}
    )
    assert 400 <= response.status_code < 500 and "code" in response.json()


def test_get_run_shows_its_spec_tags_and_metrics(world):
    run = world.submit({"recipe": {"model": "cnn"}, "tags": ["t1"]})
    body = world.api("viewer").get(f"/api/runs/{run.id}").json()
    assert body["spec"]["recipe"]["model"] == "cnn" and body["tags"] == ["t1"] and body["metrics"] == {}


def test_cancel_then_cancel_again(world):
    run = world.submit()
    api = world.api("editor")
    first = api.post(f"/api/runs/{run.id}/cancel").json()
    assert first["cancelled"] is True and first["run"]["state"] == RunState.CANCELLED
    assert api.post(f"/api/runs/{run.id}/cancel").json()["cancelled"] is False


def test_rerun_copies_the_spec_into_a_new_run(world):
    run = world.submit({"recipe": {"model": "cnn"}, "params": {"x": 1}})
    again = world.api("editor").post(f"/api/runs/{run.id}/rerun").json()
    assert again["number"] == run.number + 1 and again["cloned_from_id"] == run.id and again["params"]["x"] == 1


def test_delete_refuses_an_active_run_and_changes_nothing(world):
    run = world.submit()
    response = world.api("owner").delete(f"/api/runs/{run.id}")
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "state"
    assert Run.objects.filter(id=run.id).exists()


def test_delete_removes_a_finished_run_and_its_files(world):
    run = world.submit()
    artifact = artifact_store(run_id=run.id, name="w.bin", kind="artifact", file=ContentFile(b"w", name="w.bin"))
    world.api("owner").post(f"/api/runs/{run.id}/cancel")
    assert world.api("owner").delete(f"/api/runs/{run.id}").status_code == 204
    assert not Run.objects.filter(id=run.id).exists() and not Artifact.objects.exists()
    assert not default_storage.exists(artifact.storage_path)
    assert world.api("owner").get(f"/api/runs/{run.id}").status_code == 404
