"""engine.track: the same script writes a local folder outside Kiln and events inside it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from engine.track.checkpoint import read_checkpoint, write_checkpoint
from engine.track.session import Session


def test_outside_kiln_track_writes_a_local_run_folder(tmp_path):
    session = Session.from_environment({}, defaults={"lr": 0.1}, root=tmp_path / "kiln-runs")
    assert session.log({"loss": np.float32(0.5)}) == 0
    assert session.log({"loss": 0.25}) == 1
    assert session.log({"loss": 0.2}, step=10) == 10
    assert session.log({"acc": 1}) == 11
    session.progress(epoch=1, epochs=2)
    (tmp_path / "plot.txt").write_text("curve")
    session.log_artifact(tmp_path / "plot.txt", "plots/curve.txt")
    session.save_checkpoint({"w": np.ones(2)}, step=11)
    session.close()
    [run_dir] = (tmp_path / "kiln-runs").iterdir()
    assert json.loads((run_dir / "config.json").read_text()) == {"lr": 0.1}
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line.get("loss")) for line in lines] == [(0, 0.5), (1, 0.25), (10, 0.2), (11, None)]
    assert json.loads((run_dir / "progress.json").read_text())["epochs"] == 2
    assert (run_dir / "artifacts" / "plots" / "curve.txt").read_text() == "curve"
    assert (run_dir / "checkpoints" / "step-0000000011.safetensors").exists()


def test_inside_kiln_track_reads_params_and_appends_events(tmp_path):
    (tmp_path / "params.json").write_text(json.dumps({"lr": 0.5}))
    env = {"KILN_RUN_DIR": str(tmp_path), "KILN_EVENTS": str(tmp_path / "events"), "KILN_CONFIG": str(tmp_path / "params.json")}
    session = Session.from_environment(env, defaults={"lr": 0.1, "epochs": 3})
    assert session.config == {"lr": 0.5, "epochs": 3}
    session.log({"loss": 1.0})
    session.save_checkpoint({"w": np.zeros(1)}, step=0)
    events = [json.loads(line) for line in (tmp_path / "events").read_text().splitlines()]
    assert [e["type"] for e in events] == ["metrics", "checkpoint"]
    assert events[1]["path"] == "checkpoints/step-0000000000.safetensors"


def test_a_checkpoint_is_written_to_a_temp_name_then_renamed(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(source, target):
        seen.append((os.path.basename(source), os.path.exists(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    path = write_checkpoint(tmp_path, {"w": np.arange(4.0), "blob": b"\x00raw", "epoch": 3, "f": np.float32(2.5)}, step=7)
    assert seen == [(".step-0000000007.safetensors.tmp-" + str(os.getpid()), False)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000000007.safetensors"]
    loaded = read_checkpoint(path)
    assert loaded.step == 7 and loaded.state["epoch"] == 3 and loaded.state["f"] == 2.5
    assert loaded.state["blob"] == b"\x00raw" and np.array_equal(loaded.state["w"], np.arange(4.0))


def test_resume_returns_the_last_checkpoint_and_continues_the_step_count(tmp_path):
    session = Session.from_environment({}, root=tmp_path)
    assert session.resume() is None
    session.save_checkpoint({"w": np.ones(1)}, step=3)
    session.save_checkpoint({"w": np.full(1, 9.0)}, step=9)
    fresh = Session.from_environment({"KILN_RESUME": str(session.run_dir / "checkpoints" / "step-0000000009.safetensors")},
                                     root=tmp_path)
    checkpoint = fresh.resume()
    assert checkpoint is not None and checkpoint.step == 9 and checkpoint.state["w"][0] == 9.0
    assert fresh.log({"loss": 0.1}) == 10


def test_checkpoints_refuse_what_would_need_pickle(tmp_path):
    with pytest.raises(TypeError):
        write_checkpoint(tmp_path, {"obj": object()}, step=0)
    with pytest.raises(TypeError):
        write_checkpoint(tmp_path, {"arr": np.array([object()])}, step=0)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_of_engine_state_dicts_round_trips_into_a_model(tmp_path):
    import engine
    import engine.nn as nn

    engine.manual_seed(0)
    model, twin = nn.Linear(3, 2), nn.Linear(3, 2)
    optimizer = engine.optim.Adam(model.parameters(), lr=0.1)
    model(engine.ones(4, 3)).sum().backward()
    optimizer.step()
    path = write_checkpoint(tmp_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1}, step=5)
    loaded = read_checkpoint(path)
    twin.load_state_dict(loaded.state["model"])
    assert loaded.step == 5 and loaded.state["epoch"] == 1
    assert engine.equal(twin.weight, model.weight)
    assert loaded.state["optimizer"]["state"][0]["step"] is not None
