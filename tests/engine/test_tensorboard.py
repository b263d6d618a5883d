"""engine.utils.tensorboard.SummaryWriter: real event files outside Kiln (read back by tensorboard), Kiln's channel inside."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import track
from engine.utils.tensorboard import SummaryWriter

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="the dev extra installs tensorboard")


@pytest.fixture(autouse=True)
def _fresh_track(monkeypatch, tmp_path):
    for name in ("KILN_RUN_DIR", "KILN_EVENTS", "KILN_CONFIG", "KILN_RESUME", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(track, "_session", None)
    yield
    if track._session is not None:
        track._session.close()


def _accumulator(folder) -> event_accumulator.EventAccumulator:
    sizes = {event_accumulator.IMAGES: 0, event_accumulator.HISTOGRAMS: 0, event_accumulator.TENSORS: 0}
    reader = event_accumulator.EventAccumulator(str(folder), size_guidance=sizes)
    reader.Reload()
    return reader


def test_outside_kiln_it_writes_event_files_tensorboard_reads(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with SummaryWriter(log_dir=tmp_path / "tb", filename_suffix=".v1") as writer:
        for step in range(4):
            writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=1000.0 + step)
        writer.add_scalars("lr", {"a": 0.1, "b": 0.2}, 0)
        writer.add_text("notes", "hello **tensorboard**", 1)
        writer.add_histogram("weights", np.arange(100.0), 2, bins=10)
        writer.add_image("digit", np.full((3, 8, 6), 0.5), 3)
        figure, axes = plt.subplots(figsize=(2, 2))
        axes.plot([0, 1])
        writer.add_figure("curve", figure, 4)
        writer.add_hparams({"lr": 0.01, "opt": "adam", "bn": True}, {"hp/acc": 0.9}, run_name="trial")
    reader = _accumulator(tmp_path / "tb")
    assert [(e.step, e.value, e.wall_time) for e in reader.Scalars("loss")] == [
        (s, pytest.approx(1.0 / (s + 1)), 1000.0 + s) for s in range(4)]
    assert reader.Tensors("notes/text_summary")[0].tensor_proto.string_val == [b"hello **tensorboard**"]
    histogram = reader.Histograms("weights")[0].histogram_value
    assert (histogram.num, histogram.min, histogram.max, histogram.sum) == (100, 0.0, 99.0, 4950.0)
    assert sum(histogram.bucket) == 100
    image = reader.Images("digit")[0]
    assert (image.width, image.height) == (6, 8) and image.encoded_image_string.startswith(b"\x89PNG")
    assert reader.Images("curve")[0].width == 200
    assert _accumulator(tmp_path / "tb" / "lr_a").Scalars("lr")[0].value == pytest.approx(0.1)
    trial = _accumulator(tmp_path / "tb" / "trial")
    assert trial.Scalars("hp/acc")[0].value == pytest.approx(0.9)
    assert set(trial.PluginTagToContent("hparams")) == {
        "_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"}
    assert all(path.name.endswith(".v1") for path in (tmp_path / "tb").glob("events.out.tfevents.*"))


def test_inside_kiln_scalars_are_metrics_and_the_rest_artifacts(tmp_path, monkeypatch):
    run_dir, events = tmp_path / "run", tmp_path / "run" / "events.jsonl"
    run_dir.mkdir()
    monkeypatch.setenv("KILN_RUN_DIR", str(run_dir))
    monkeypatch.setenv("KILN_EVENTS", str(events))
    with SummaryWriter() as writer:
        writer.add_scalar("loss", 0.5, 0)
        writer.add_scalar("loss", 0.25, 1)
        writer.add_scalars("acc", {"train": 0.8, "val": 0.7}, 1)
        writer.add_text("notes", "epoch one", 0)
        writer.add_histogram("w", np.random.default_rng(0).normal(size=50), 1)
        writer.add_image("img", np.zeros((4, 4), np.uint8), 1, dataformats="HW")
        writer.add_hparams({"lr": 0.01, "layers": np.int64(2), "skip": None}, {"final_acc": 0.7})
    assert track.config["lr"] == 0.01 and track.config["layers"] == 2
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert [r["values"] for r in records if r["type"] == "params"] == [{"lr": 0.01, "layers": 2}]  # the run's params
    metrics = [(r["step"], r["values"]) for r in records if r["type"] == "metrics"]
    assert metrics[:3] == [(0, {"loss": 0.5}), (1, {"loss": 0.25}), (1, {"acc/train": 0.8, "acc/val": 0.7})]
    assert metrics[-1][1] == {"final_acc": 0.7}
    artifacts = sorted(r["name"] for r in records if r["type"] == "artifact")
    assert artifacts == ["tensorboard/histograms/w-0000000001.json", "tensorboard/hparams/hparams.json",
                         "tensorboard/images/img-0000000001.png", "tensorboard/text/notes-0000000000.md"]
    assert (run_dir / "artifacts" / "tensorboard/text/notes-0000000000.md").read_text() == "epoch one"


def test_bad_input_is_refused_and_a_closed_writer_writes_nothing(tmp_path):
    writer = SummaryWriter(log_dir=tmp_path / "tb")
    with pytest.raises(TypeError, match="scalar_value"):
        writer.add_scalar("loss", "high", 0)
    with pytest.raises(ValueError, match="dataformats"):
        writer.add_image("img", np.zeros((2, 2, 2, 2)), 0)
    with pytest.raises(TypeError, match="dictionaries"):
        writer.add_hparams([("lr", 1)], {})
    with pytest.raises(ValueError, match=r"value should be one of int, float, str, bool, or torch\.Tensor"):
        writer.add_hparams({"sizes": [1, 2]}, {})
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.add_scalar("loss", 1.0, 0)
    assert _accumulator(tmp_path / "tb").Tags()["scalars"] == []


def test_default_log_dir_is_pytorchs(tmp_path):
    with SummaryWriter(comment="-lr0.1") as writer:
        writer.add_scalar("x", 1.0, 0)
    assert writer.get_logdir().startswith("runs/") and writer.get_logdir().endswith("-lr0.1")
    assert list((tmp_path / writer.get_logdir()).glob("events.out.tfevents.*"))


def test_without_tensorboard_it_logs_to_the_local_run_folder(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with SummaryWriter() as writer:
        writer.add_scalar("loss", 0.5, 3)
        writer.add_text("notes", "local", 3)
        writer.add_hparams({"lr": 0.1}, {"acc": 0.5})
    run_dir = track.run_dir()
    assert json.loads((run_dir / "config.json").read_text()) == {"lr": 0.1}
    assert run_dir.parent == tmp_path / "kiln-runs"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line.get("loss")) for line in lines] == [(3, 0.5), (4, None)]
    assert (run_dir / "artifacts" / "tensorboard" / "text" / "notes-0000000003.md").read_text() == "local"
