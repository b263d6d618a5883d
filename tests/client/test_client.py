"""The Python client against a real server over HTTP."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile

import pytest
from django.core.files.base import ContentFile

from webapp.client.client import Client, KilnError
from webapp.experiments.results import MetricPoint, artifact_store, logs_append, metrics_log

from .conftest import PASSWORD

SCRIPT = "import engine.track as track\ntrack.log({'loss': 1.0}, step=0)\n"


def test_login_then_submit_a_recipe_and_find_it_with_a_query(server):
    client = Client.login(server.url, server.user.username, PASSWORD)
    assert client.token and client.token.startswith("kiln_")
    runs = client.submit(spec={"recipe": {"model": "mlp"}, "tags": ["baseline"]}, project=server.project_path, gpus=1,
                         params={"lr": 0.01})
    assert len(runs) == 1 and runs[0]["gpus"] == 1 and runs[0]["params"]["lr"] == 0.01
    client.submit(spec={"recipe": {"model": "cnn"}}, project=server.project.id)
    found = client.runs(server.project_path, query="tags = baseline AND params.lr < 0.1")
    assert [r["id"] for r in found] == [runs[0]["id"]]
    assert len(client.runs(server.project_path)) == 2 and len(client.runs(limit=1)) == 1


def test_a_wrong_password_raises_kiln_error(server):
    with pytest.raises(KilnError) as excinfo:
        Client.login(server.url, server.user.username, "nope")
    assert (excinfo.value.status, excinfo.value.code) == (401, "bad_credentials")


def test_submit_code_with_a_yaml_config_and_a_zip(server, tmp_path):
    client = Client(server.url, server.token)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    config = tmp_path / "spec.yaml"
    config.write_text("name: trial\nparams:\n  lr: 0.1\nsweep:\n  parameters:\n    lr: {values: [0.1, 0.2]}\n")
    runs = client.submit(spec=config, code=script, project=server.project_path, params={"batch": 8})
    assert [r["params"] for r in runs] == [{"lr": 0.1, "batch": 8}, {"lr": 0.2, "batch": 8}]
    assert {r["kind"] for r in runs} == {"code"}
    archive = tmp_path / "project.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("main.py", SCRIPT)
    assert client.submit(code=archive, project=server.project_path)[0]["entrypoint"] == "main.py"


def test_bad_input_raises_kiln_error_naming_the_field(server, tmp_path):
    client = Client(server.url, server.token)
    with pytest.raises(KilnError) as excinfo:
        client.submit(spec={"recipe": {"model": "mlp", "colour": "red"}}, project=server.project_path)
    assert excinfo.value.code == "invalid_spec" and excinfo.value.fields[0]["field"] == "recipe.colour"
    assert "recipe.colour" in str(excinfo.value)
    with pytest.raises(KilnError) as excinfo:
        client.runs(server.project_path, query="state IN (running")
    assert excinfo.value.status == 400 and "position" in excinfo.value.message
    with pytest.raises(KilnError) as excinfo:
        client.get(999999)
    assert excinfo.value.status == 404


def test_get_metrics_logs_cancel_and_wait(server):
    client = Client(server.url, server.token)
    run = client.submit(spec={"recipe": {"model": "mlp"}}, project=server.project_path)[0]
    metrics_log(run_id=run["id"], points=[MetricPoint("loss", i, 1.0 / (i + 1), 0.0) for i in range(10)])
    logs_append(run_id=run["id"], lines=[(0, "stdout", "epoch 1"), (1, "stdout", "epoch 2")])
    assert client.get(run)["metrics"]["loss"]["last"] == 0.1
    assert client.metrics(run)[0]["key"] == "loss"
    assert client.metrics(run, "loss")["steps"] == list(range(10))
    assert client.log_metrics(run, [{"key": "acc", "step": 0, "value": 0.5}]) == {"received": 1, "stored": 1}
    assert [line["text"] for line in client.logs(run, offset=1)["lines"]] == ["epoch 2"]
    with pytest.raises(KilnError) as excinfo:
        client.wait(run, timeout=0.2, poll=0.05)
    assert excinfo.value.code == "timeout"
    assert client.cancel(run)["state"] == "cancelled"
    assert client.wait(run["id"], timeout=5)["state"] == "cancelled"


def test_non_finite_metric_values_come_back_as_python_floats(server):
    client = Client(server.url, server.token)
    run = client.submit(spec={"recipe": {"model": "mlp"}}, project=server.project_path)[0]
    client.log_metrics(run, [{"key": "loss", "step": 0, "value": 1.5}, {"key": "loss", "step": 1, "value": math.inf},
                             {"key": "loss", "step": 2, "value": math.nan}])
    values = client.metrics(run, "loss")["values"]
    assert values[0] == 1.5 and values[1] == math.inf and math.isnan(values[2])
    assert math.isnan(client.metrics(run)[0]["last"])
    assert math.isnan(client.get(run)["metrics"]["loss"]["last"])
    assert math.isnan(client.runs(server.project_path)[0]["metrics"]["loss"]["last"])


def test_download_writes_every_artifact_under_dest(server, tmp_path):
    client = Client(server.url, server.token)
    run = client.submit(spec={"recipe": {"model": "mlp"}}, project=server.project_path)[0]
    artifact_store(run_id=run["id"], name="model/weights.bin", kind="checkpoint", file=ContentFile(b"\x00" * 3000, name="w"))
    uploaded = tmp_path / "notes.txt"
    uploaded.write_text("hello")
    assert client.upload(run, uploaded)["size"] == 5
    paths = client.download(run, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in paths) == ["model/weights.bin", "notes.txt"]
    assert (tmp_path / "out" / "model" / "weights.bin").read_bytes() == b"\x00" * 3000


def test_credentials_come_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)
    assert Client().projects()[0]["path"] == server.project_path


def test_an_unreachable_server_raises_kiln_error():
    with pytest.raises(KilnError) as excinfo:
        Client("http://127.0.0.1:9", "kiln_x", timeout=2).projects()
    assert excinfo.value.code == "unreachable"


def test_the_client_and_cli_import_no_django():
    code = (
        "import sys, webapp.client.client, webapp.client.cli as cli;"
        "cli._parser();"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'django');"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
