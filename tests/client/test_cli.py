"""The `kiln` client commands against a real server: login, submit, runs, logs, cancel, download."""

from __future__ import annotations

import json
import stat

import pytest
from django.core.files.base import ContentFile

from webapp.client import cli
from webapp.client.client import credentials_path
from webapp.experiments.models import Run
from webapp.experiments.results import artifact_store, logs_append

from .conftest import PASSWORD


@pytest.fixture
def logged_in(server, monkeypatch):
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)
    return server


def _kiln(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_login_prompts_for_the_password_and_stores_a_private_token(server, capsys, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": PASSWORD)
    code, out, _ = _kiln(capsys, "login", "--url", server.url, "--username", server.user.username)
    assert code == 0 and f"as {server.user.username}" in out
    path = credentials_path()
    stored = json.loads(path.read_text())
    assert stored["url"] == server.url and stored["token"].startswith("kiln_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD not in path.read_text()
    code, out, _ = _kiln(capsys, "runs")  # the stored token is used
    assert code == 0 and "(no runs)" in out


def test_login_with_a_wrong_password_fails_with_one_line(server, capsys, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "wrong")
    monkeypatch.setattr("builtins.input", lambda prompt="": server.user.username)
    code, _, err = _kiln(capsys, "login", "--url", server.url)
    assert code == 1 and err.strip().splitlines() == [err.strip()] and "Wrong username or password" in err
    assert not credentials_path().exists()


def test_submit_code_and_config_then_list_with_a_query(logged_in, capsys, tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    code, out, err = _kiln(capsys, "submit", str(script), "--project", logged_in.project_path, "--param", "lr=0.001",
                           "--param", "arch=resnet", "--gpus", "1")
    assert code == 0, err
    assert "vision#1" in out
    config = tmp_path / "recipe.yaml"
    config.write_text("recipe:\n  model: mlp\ntags: [baseline]\n")
    code, out, err = _kiln(capsys, "submit", str(config), "--project", logged_in.project_path)
    assert code == 0, err
    first = Run.objects.get(number=1)
    assert first.params == {"lr": 0.001, "arch": "resnet"} and first.gpus == 1
    code, out, _ = _kiln(capsys, "runs", "--project", logged_in.project_path, "--query", "params.lr < 0.01 OR tags = baseline")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:4] == ["ID", "RUN", "NAME", "STATE"] and len(lines) == 3
    code, out, _ = _kiln(capsys, "runs", "--query", "tags = baseline")
    assert len(out.strip().splitlines()) == 2 and "mlp-digits" in out


def test_submitting_a_sweep_the_scheduler_fills_says_so(logged_in, capsys, tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text("recipe: {model: mlp}\nsweep:\n  method: bayes\n  max_runs: 4\n"
                      "  parameters: {optimizer.lr: {min: 0.0001, max: 0.1, distribution: log_uniform}}\n")
    code, out, err = _kiln(capsys, "submit", str(config), "--project", logged_in.project_path)
    assert code == 0, err
    assert "Submitted sweep " in out and "the scheduler starts its trials as slots free" in out and "kiln sweep " in out


def test_submit_refuses_an_unknown_file_kind_and_bad_specs(logged_in, capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert _kiln(capsys, "submit", str(notes), "--project", logged_in.project_path)[0] == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"recipe": {"model": "mlp", "colour": "red"}}')
    code, _, err = _kiln(capsys, "submit", str(bad), "--project", logged_in.project_path)
    assert code == 1 and "recipe.colour" in err
    assert Run.objects.count() == 0


def test_logs_cancel_and_download(logged_in, capsys, tmp_path):
    code, out, _ = _kiln(capsys, "runs")
    config = tmp_path / "r.json"
    config.write_text('{"recipe": {"model": "mlp"}}')
    _kiln(capsys, "submit", str(config), "--project", logged_in.project_path)
    run = Run.objects.get()
    logs_append(run_id=run.id, lines=[(0, "stdout", "epoch 1"), (1, "stderr", "warning: slow"), (2, "stdout", "epoch 2")])
    code, out, err = _kiln(capsys, "logs", str(run.id))
    assert code == 0 and out.splitlines() == ["epoch 1", "epoch 2"] and err.strip() == "warning: slow"
    code, out, _ = _kiln(capsys, "cancel", str(run.id))
    assert code == 0 and "cancelled" in out
    code, out, _ = _kiln(capsys, "logs", "-f", str(run.id))  # a finished run: follow ends at once, with its status
    assert code == cli.EXIT_CANCELLED and out.splitlines() == ["epoch 1", "epoch 2"]
    artifact_store(run_id=run.id, name="model.bin", kind="checkpoint", file=ContentFile(b"weights", name="m"))
    code, out, _ = _kiln(capsys, "download", str(run.id), "--dest", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "model.bin").read_bytes() == b"weights"


def test_client_commands_without_a_token_say_to_log_in(server, capsys, monkeypatch):
    monkeypatch.setenv("KILN_URL", server.url)
    code, _, err = _kiln(capsys, "runs")
    assert code == 1 and "kiln login" in err
    code, _, err = _kiln(capsys, "cancel", "12345")
    assert code == 1


def test_projects_lists_and_creates_and_submit_reads_kiln_project(logged_in, capsys, tmp_path, monkeypatch):
    code, out, _ = _kiln(capsys, "projects")
    assert code == 0 and out.split()[:4] == ["ID", "PROJECT", "NAME", "VISIBILITY"] and "grace/vision" in out
    code, out, err = _kiln(capsys, "projects", "create", "Speech Models")
    assert code == 0, err
    assert "grace/speech-models" in out
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    monkeypatch.setenv("KILN_PROJECT", "grace/speech-models")
    code, out, err = _kiln(capsys, "submit", str(script))
    assert code == 0, err
    assert "grace/speech-models#1" in out


def test_submit_to_a_missing_project_says_how_to_make_one(logged_in, capsys, tmp_path):
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    code, _, err = _kiln(capsys, "submit", str(script), "--project", "grace/nope")
    assert code == 1 and "No such project" in err and "kiln projects create" in err
    assert not Run.objects.exists()
    code, _, err = _kiln(capsys, "projects", "create", "Vision")  # the slug is taken
    assert code == 1 and "already a project called 'vision'" in err


def test_download_model_fetches_only_that_models_file_in_the_chosen_format(logged_in, capsys, tmp_path):
    config = tmp_path / "r.json"
    config.write_text('{"recipe": {"model": "mlp"}}')
    _kiln(capsys, "submit", str(config), "--project", logged_in.project_path)
    run = Run.objects.get()
    signature = {"inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 2]}], "outputs": []}
    for fmt, name in (("engine", "model.pt"), ("onnx", "model.onnx")):
        artifact_store(run_id=run.id, name=name, kind="model", file=ContentFile(fmt.encode(), name=name),
                       metadata={"model": "model", "format": fmt, "signature": signature})
    code, out, _ = _kiln(capsys, "download", str(run.id), "--model", "model", "--format", "onnx", "--dest", str(tmp_path / "o"))
    assert code == 0 and [p.name for p in (tmp_path / "o").iterdir()] == ["model.onnx"]
    assert (tmp_path / "o" / "model.onnx").read_bytes() == b"onnx" and out.strip().endswith("model.onnx")
    code, _, _ = _kiln(capsys, "download", str(run.id), "--model", "model", "--format", "engine", "--dest", str(tmp_path / "e"))
    assert code == 0 and (tmp_path / "e" / "model.pt").read_bytes() == b"engine"
    code, _, err = _kiln(capsys, "download", str(run.id), "--model", "gpt", "--dest", str(tmp_path / "x"))
    assert code == 1 and "no model 'gpt' (models: model)" in err
