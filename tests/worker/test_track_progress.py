"""track.progress: step of total and/or epoch of epochs, checked once, carried to the run's progress."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import track
from engine.track.session import Session
from webapp.experiments.live import shown_progress
from worker.events import EventIngestor, EventReader


def kiln_session(tmp_path) -> Session:
    return Session.from_environment({"KILN_RUN_DIR": str(tmp_path), "KILN_EVENTS": str(tmp_path / "events")})


def progress_events(tmp_path) -> list[dict]:
    return [e for e in map(json.loads, (tmp_path / "events").read_text().splitlines()) if e["type"] == "progress"]


def test_step_of_total_and_epoch_of_epochs_go_into_one_event(tmp_path, monkeypatch):
    clock = iter([1000.0, 1010.0, 1040.0])
    monkeypatch.setattr("engine.track.session.time.time", lambda: next(clock))
    session = kiln_session(tmp_path)  # started at 1000
    session.progress(step=250, total=1000)  # a quarter done after 10 s: 30 s left
    session.progress(step=np.int64(500), total=1000, epoch=1, epochs=2)  # half done after 40 s: 40 s left
    session.close()
    first, second = progress_events(tmp_path)
    assert first == {"type": "progress", "step": 250, "total": 1000, "eta_seconds": 30.0, "time": 1010.0}
    assert second == {"type": "progress", "step": 500, "total": 1000, "epoch": 1, "epochs": 2, "eta_seconds": 40.0,
                      "time": 1040.0}


def test_outside_kiln_the_module_call_writes_progress_json(tmp_path):
    track.init(dir=tmp_path)
    try:
        track.progress(step=3, total=30)
        folder = track.run_dir()
    finally:
        track.finish()
    record = json.loads((folder / "progress.json").read_text())
    assert (record["step"], record["total"]) == (3, 30) and "epoch" not in record


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({}, ValueError, "needs step= and total=, or epoch= and epochs="),
    ({"step": 3}, ValueError, "step= needs total= too"),
    ({"epochs": 3}, ValueError, "epochs= needs epoch= too"),
    ({"step": 11, "total": 10}, ValueError, "step must be at most total (10), got 11"),
    ({"step": 0, "total": 0}, ValueError, "total must be at least 1, got 0"),
    ({"epoch": -1, "epochs": 3}, ValueError, "epoch must be >= 0, got -1"),
    ({"step": 1.5, "total": 10}, TypeError, "step must be an int, got float 1.5"),
    ({"step": True, "total": 10}, TypeError, "step must be an int, got True"),
    ({"epoch": 1, "epochs": "3"}, TypeError, "epochs must be an int, got str '3'"),
])
def test_bad_counts_raise_a_clear_error_and_record_nothing(tmp_path, kwargs, error, words):
    session = kiln_session(tmp_path)
    with pytest.raises(error) as caught:
        session.progress(**kwargs)
    session.close()
    assert words in str(caught.value)
    assert progress_events(tmp_path) == []


def test_a_resumed_run_measures_its_eta_from_its_first_report(tmp_path, monkeypatch):
    first = Session.from_environment({}, root=tmp_path)
    first.save_checkpoint({"w": np.ones(1)}, step=599)
    clock = iter([2000.0, 2100.0, 2110.0])
    monkeypatch.setattr("engine.track.session.time.time", lambda: next(clock))
    second = tmp_path / "second"
    second.mkdir()
    resumed = Session.from_environment({"KILN_RUN_DIR": str(second), "KILN_EVENTS": str(second / "events"),
                                        "KILN_RESUME": str(first.run_dir / "checkpoints" / "step-0000000599.safetensors")})
    assert resumed.resume() is not None
    resumed.progress(step=600, total=1000)  # 100 s after start, but the earlier 600 steps were another process's
    resumed.progress(step=700, total=1000)  # 100 steps in 10 s: 300 left take 30 s
    resumed.close()
    etas = [e["eta_seconds"] for e in progress_events(second)]
    assert etas == [None, pytest.approx(30.0)]


def test_the_worker_stores_step_progress_and_ignores_a_bad_event(db, tmp_path, submit_code):
    run = submit_code("print('hi')")
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in [
        {"type": "progress", "step": 40, "total": 100, "eta_seconds": 12.5, "time": 5.0},
        {"type": "progress", "step": 400, "total": 100, "time": 6.0},  # past its total: ignored, the last good one stays
        {"type": "progress", "epoch": 1, "time": 7.0},
    ]))
    notes: list[str] = []
    events, _ = EventReader(path).read()
    EventIngestor(run.id, tmp_path, notes.append).ingest(events)
    run.refresh_from_db()
    assert run.progress == {"step": 40, "total": 100, "eta_seconds": 12.5, "at": 5.0}
    assert notes == [
        "ignored a malformed progress event: progress: step must be at most total (100), got 400",
        "ignored a malformed progress event: progress: epoch= needs epochs= too (epoch of epochs)",
    ]
    shown = shown_progress(run)
    assert shown["bar"] == {"value": 40, "max": 100}
    assert shown["text"] == "step 40 of 100 · about 12s left"
