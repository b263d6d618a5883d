"""`kiln import tensorboard DIR --project OWNER/NAME`: event files the test writes become Kiln runs, once."""

from __future__ import annotations

import numpy as np
import pytest

from webapp.client.cli import main
from webapp.experiments.models import Artifact, Metric, Run

event_file_writer = pytest.importorskip("tensorboard.summary.writer.event_file_writer",
                                        reason="the dev extra installs tensorboard")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(server, monkeypatch):
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)
    return server


def _write_runs(root, monkeypatch):
    from engine import track
    from engine.utils.tensorboard import SummaryWriter

    for name in ("KILN_RUN_DIR", "KILN_EVENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(track, "_session", None)
    for run, lr in (("lr-0.1", 0.1), ("nested/lr-0.01", 0.01)):
        with SummaryWriter(log_dir=root / run) as writer:
            for step in range(5):
                writer.add_scalar("train/loss", lr * (5 - step), step, walltime=1_700_000_000 + step)
            writer.add_text("notes", f"run with lr={lr}", 0)
            writer.add_histogram("weights", np.arange(10.0), 4)
            writer.add_hparams({"lr": lr, "optimizer": "sgd"}, {"hparam/final": lr}, run_name=".")
    (root / "empty").mkdir()


def test_import_tensorboard_makes_one_run_per_folder_and_a_second_import_adds_nothing(cli, tmp_path, monkeypatch, capsys):
    logdir = tmp_path / "tb"
    _write_runs(logdir, monkeypatch)
    assert main(["import", "tensorboard", str(logdir), "--project", cli.project_path]) == 0
    out = capsys.readouterr()
    assert "imported 2 run(s); 0 already imported" in out.out
    assert "2/2" in out.err  # the progress bar
    runs = {run.name: run for run in Run.objects.filter(project=cli.project)}
    assert set(runs) == {"lr-0.1", "nested/lr-0.01"}
    run = runs["lr-0.1"]
    assert (run.kind, run.state) == ("external", "succeeded")
    assert run.params == {"lr": 0.1, "optimizer": "sgd"}
    assert list(Metric.objects.filter(run=run, key="train/loss").order_by("step").values_list("step", "wall_time")) == [
        (s, 1_700_000_000.0 + s) for s in range(5)]
    assert Metric.objects.get(run=run, key="train/loss", step=4).value == pytest.approx(0.1)
    names = set(Artifact.objects.filter(run=run).values_list("name", flat=True))
    assert names == {"tensorboard/text/notes/text_summary-0000000000.md", "tensorboard/histograms/weights-0000000004.json"}

    assert main(["import", "tensorboard", str(logdir), "--project", cli.project_path]) == 0
    assert "imported 0 run(s); 2 already imported" in capsys.readouterr().out
    assert Run.objects.filter(project=cli.project).count() == 2


def test_import_tensorboard_reports_what_it_cannot_read(cli, tmp_path, capsys):
    assert main(["import", "tensorboard", str(tmp_path), "--project", cli.project_path]) == 0
    assert "no TensorBoard event files" in capsys.readouterr().out
    assert main(["import", "tensorboard", str(tmp_path / "missing"), "--project", cli.project_path]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_the_folder_add_hparams_writes_by_default_joins_its_run(cli, tmp_path, monkeypatch, capsys):
    from engine import track
    from engine.utils.tensorboard import SummaryWriter

    for name in ("KILN_RUN_DIR", "KILN_EVENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(track, "_session", None)
    logdir = tmp_path / "tb"
    with SummaryWriter(log_dir=logdir / "baseline") as writer:  # as PyTorch's: hparams go to baseline/<time.time()>/
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_hparams({"lr": 0.3, "epochs": 3}, {"final_loss": 1 / 3})
    assert len([p for p in (logdir / "baseline").iterdir() if p.is_dir()]) == 1
    assert main(["import", "tensorboard", str(logdir), "--project", cli.project_path]) == 0
    assert "imported 1 run(s); 0 already imported" in capsys.readouterr().out
    run = Run.objects.get(project=cli.project)
    assert run.name == "baseline" and run.params == {"lr": 0.3, "epochs": 3}
    assert set(Metric.objects.filter(run=run).values_list("key", flat=True)) == {"loss", "final_loss"}
    assert main(["import", "tensorboard", str(logdir), "--project", cli.project_path]) == 0
    assert "imported 0 run(s); 1 already imported" in capsys.readouterr().out
