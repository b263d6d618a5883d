"""`kiln import mlflow --from URI`: runs logged into a real MLflow server (started here, SQLite backend) copied into Kiln, once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import requests
from services import mlflow_server_binary, require

from webapp.client.cli import main
from webapp.experiments.models import Artifact, Metric, ReplacedMetric, Run, RunTag

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MLFLOW = mlflow_server_binary()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, free_port_module):
    require(MLFLOW is not None, "needs the test-only MLflow tracking server: `make mlflow-server`")
    folder = tmp_path_factory.mktemp("mlflow")
    url = f"http://127.0.0.1:{free_port_module}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--artifacts-destination",
         str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(free_port_module), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=log, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the MLflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
                time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and its uvicorn workers: their own process group
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def free_port_module():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_history(url: str, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    source = MlflowClient(tracking_uri=url)
    experiment = source.create_experiment("digits")
    good = source.create_run(experiment, run_name="good", tags={"team": "vision"})
    source.log_param(good.info.run_id, "lr", "0.01")
    for step in range(50):
        source.log_metric(good.info.run_id, "loss", 1.0 / (step + 1), timestamp=1_700_000_000_000 + step, step=step)
    (tmp_path / "model.txt").write_text("weights")
    source.log_artifact(good.info.run_id, str(tmp_path / "model.txt"), "model")
    source.set_terminated(good.info.run_id, "FINISHED")
    failed = source.create_run(experiment, run_name="crashed")
    source.log_metric(failed.info.run_id, "loss", 9.0, step=0)
    source.set_terminated(failed.info.run_id, "FAILED")
    repeats = source.create_run(experiment, run_name="repeats")
    for value in (5.0, 4.0, 3.0, 2.0, 1.0):
        source.log_metric(repeats.info.run_id, "loss", value)  # no step: MLflow logs each at step 0
    source.set_terminated(repeats.info.run_id, "FINISHED")
    source.create_run(experiment, run_name="still going")
    other = source.create_experiment("other")
    source.set_terminated(source.create_run(other, run_name="elsewhere").info.run_id, "FINISHED")


def test_import_mlflow_copies_runs_with_their_history_and_a_second_import_adds_nothing(
        server, mlflow_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)
    _log_history(mlflow_server, tmp_path)
    argv = ["import", "mlflow", "--from", mlflow_server, "--experiment", "digits", "--experiment", "nope",
            "--project", server.project_path]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "imported 3 run(s); 0 already imported" in out
    assert "kept 4 repeated metric value(s) logged at a step already logged" in out
    assert "skipped run digits/still going: still running on the MLflow server" in out
    assert "skipped experiment 'nope'" in out
    runs = {run.name: run for run in Run.objects.filter(project=server.project)}
    assert set(runs) == {"good", "crashed", "repeats"}
    good = runs["good"]
    assert (good.kind, good.state, good.params) == ("external", "succeeded", {"lr": 0.01})
    assert list(Metric.objects.filter(run=good, key="loss").order_by("step").values_list("step", "wall_time"))[:2] == [
        (0, 1_700_000_000.0), (1, 1_700_000_000.001)]
    assert Metric.objects.filter(run=good, key="loss").count() == 50
    assert RunTag.objects.get(run=good, name="team").value == "vision"
    artifact = Artifact.objects.get(run=good)
    assert artifact.name == "model/model.txt" and artifact.size == len("weights")
    assert runs["crashed"].state == "failed"
    _assert_every_value_kept(server, mlflow_server, runs["repeats"])

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "imported 0 run(s); 3 already imported" in out and "repeated" not in out
    assert Run.objects.filter(project=server.project).count() == 3
    assert ReplacedMetric.objects.filter(run=runs["repeats"]).count() == 4
    _assert_every_value_kept(server, mlflow_server, runs["repeats"])


def _assert_every_value_kept(server, mlflow_url: str, run: Run) -> None:
    """Kiln's MLflow get-history returns the source's 5 values at step 0; Kiln's chart shows MLflow's latest."""
    from mlflow.tracking import MlflowClient

    original = MlflowClient(tracking_uri=mlflow_url)
    [source_run] = original.search_runs([original.get_experiment_by_name("digits").experiment_id],
                                        filter_string="attributes.run_name = 'repeats'")
    expected = sorted((m.step, m.timestamp, m.value) for m in original.get_metric_history(source_run.info.run_id, "loss"))
    # NOTE: plain requests, not the MLflow client: its pooled keep-alive socket would hold a live-server thread open
    auth = {"Authorization": f"Bearer {server.token}"}
    history = requests.get(f"{server.url}/api/2.0/mlflow/metrics/get-history", headers=auth, timeout=30,
                           params={"run_id": run.id, "metric_key": "loss"}).json()["metrics"]
    assert len(history) == 5 and sorted((m["step"], m["timestamp"], m["value"]) for m in history) == expected
    chart = requests.get(f"{server.url}/api/runs/{run.id}/metrics/history", params={"key": "loss"}, timeout=30,
                         headers=auth).json()
    assert (chart["steps"], chart["values"]) == ([0], [source_run.data.metrics["loss"]])
