"""Params a job reports (track.log_params, SummaryWriter.add_hparams) become its Run.params, checked by the worker."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from engine import track
from webapp.accounts.tokens import token_create
from webapp.experiments.job_params import MAX_PARAMS_PER_EVENT
from worker.events import EventIngestor

HPARAMS_SCRIPT = """
    import engine
    import numpy as np
    from engine import track
    from engine.utils.tensorboard import SummaryWriter

    with SummaryWriter() as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_hparams({"lr": track.config["lr"], "optimizer": "adam", "layers": np.int64(2),
                            "dropout": engine.tensor(0.25), "batchnorm": True, "unused": None},
                           {"hparam/accuracy": 0.91})
        writer.add_hparams({"lr": 0.5}, {})  # a param keeps its value: refused, noted in the run's log
    print("done")
"""


def test_add_hparams_in_a_worker_run_becomes_the_runs_params_and_metrics(run_job, log_text):
    run, outcome = run_job(HPARAMS_SCRIPT, params={"lr": 0.01})
    assert outcome.state == "succeeded", log_text(run)
    assert run.params == {"lr": 0.01, "optimizer": "adam", "layers": 2, "dropout": 0.25, "batchnorm": True}
    assert list(run.metrics.filter(key="hparam/accuracy").values_list("value", flat=True)) == [pytest.approx(0.91)]
    assert "params not stored: param 'lr' is already 0.01; a param keeps its value, so 0.5 was not stored" in log_text(run)
    token = token_create(user=run.owner, name="test")[1]
    listed = Client().get("/api/runs", {"project": run.project_id}, headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.content  # the run table and compare view read these params
    assert [item["params"] for item in listed.json()["items"]] == [run.params]


def test_track_log_params_outside_kiln_adds_to_the_run_folders_config(tmp_path):
    track.init({"lr": 0.1}, dir=tmp_path)
    try:
        track.log_params({"batch_size": 64, "schedule": "cosine"})
        folder = track.run_dir()
        assert track.config == {"lr": 0.1, "batch_size": 64, "schedule": "cosine"}
        with pytest.raises(TypeError, match="param 'bad' must be text, a boolean or a number, got list"):
            track.log_params({"bad": [1, 2]})
    finally:
        track.finish()
    assert json.loads((folder / "config.json").read_text()) == {"lr": 0.1, "batch_size": 64, "schedule": "cosine"}


@pytest.mark.parametrize(("values", "words"), [
    ([["lr", 1]], "params must be an object of name: value"),
    ({f"p{i}": i for i in range(MAX_PARAMS_PER_EVENT + 1)}, "at most 100 params, got 101"),
    ({"": 1}, "must have 1-250 characters"),
    ({"k" * 251: 1}, "must have 1-250 characters"),
    ({"note": "x" * 6001}, "more than 6000 characters"),
    ({"lr": float("nan")}, "must be text, a boolean or a finite number"),
    ({"lr": float("inf")}, "must be text, a boolean or a finite number"),
    ({"shape": [1, 2]}, "must be text, a boolean or a finite number"),
    ({"nested": {"a": 1}}, "must be text, a boolean or a finite number"),
])
def test_a_malformed_params_event_is_refused_whole_and_changes_nothing(submit_code, tmp_path, values, words):
    run = submit_code("print('hi')", params={"lr": 0.01})
    notes: list[str] = []
    EventIngestor(run.id, tmp_path, notes.append).ingest([{"type": "params", "time": 1.0, "values": values}])
    run.refresh_from_db()
    assert run.params == {"lr": 0.01}
    assert len(notes) == 1 and "malformed params event" in notes[0] and words in notes[0]


def test_params_events_are_idempotent_and_kinds_stay_apart(submit_code, tmp_path):
    run = submit_code("print('hi')", params={"lr": 0.01, "layers": 2, "on": True})
    notes: list[str] = []
    events = [{"type": "params", "time": 1.0, "values": {"lr": 0.01, "layers": 2.0, "tag": "a"}},
              {"type": "params", "time": 2.0, "values": {"on": 1, "other": "never stored"}},
              {"type": "params", "time": 3.0, "values": {"tag": "b"}}]
    for _ in range(2):  # the same file read twice
        EventIngestor(run.id, tmp_path, notes.append).ingest(events)
    run.refresh_from_db()
    assert run.params == {"lr": 0.01, "layers": 2, "on": True, "tag": "a"}
    assert notes == ["params not stored: param 'on' is already True; a param keeps its value, so 1 was not stored",
                     "params not stored: param 'tag' is already 'a'; a param keeps its value, so 'b' was not stored"] * 2
