"""engine.track in a distributed job: rank 0 records the run, every other rank's calls are no-ops."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.track.session import Session


def kiln_env(tmp_path, rank: str | None) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.5}))
    env = {"KILN_RUN_DIR": str(tmp_path), "KILN_EVENTS": str(tmp_path / "events.jsonl"),
           "KILN_CONFIG": str(tmp_path / "config.json")}
    return env if rank is None else {**env, "RANK": rank}


@pytest.mark.parametrize("rank", [None, "0"])
def test_rank_0_or_no_rank_records_metrics_and_checkpoints(tmp_path, rank):
    session = Session.from_environment(kiln_env(tmp_path, rank))
    session.log({"loss": 1.0}, step=0)
    path = session.save_checkpoint({"w": np.ones(2, dtype=np.float32)}, step=0)
    session.close()
    events = [json.loads(line)["type"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert path.exists() and events == ["metrics", "checkpoint"]


def test_other_ranks_write_nothing_but_read_config_and_resume(tmp_path):
    rank0 = Session.from_environment(kiln_env(tmp_path, "0"))
    saved = rank0.save_checkpoint({"w": np.full(2, 7.0, dtype=np.float32)}, step=3)
    rank0.close()
    before = (tmp_path / "events.jsonl").read_text()

    env = {**kiln_env(tmp_path, "1"), "KILN_RESUME": str(saved)}
    rank1 = Session.from_environment(env)
    assert rank1.config["lr"] == 0.5
    assert rank1.log({"loss": 2.0}) == 0
    assert rank1.save_checkpoint({"w": np.zeros(2, dtype=np.float32)}, step=4) == saved.with_name(
        "step-0000000004.safetensors")
    assert not saved.with_name("step-0000000004.safetensors").exists()
    assert rank1.log_artifact(saved) == saved
    resumed = rank1.resume()
    assert resumed is not None and resumed.step == 3 and float(resumed.state["w"][0]) == 7.0
    rank1.close()
    assert (tmp_path / "events.jsonl").read_text() == before


def test_other_ranks_outside_kiln_make_no_local_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = Session.from_environment({"RANK": "2"})
    session.log({"loss": 1.0})
    session.close()
    assert not (tmp_path / "kiln-runs").exists()
