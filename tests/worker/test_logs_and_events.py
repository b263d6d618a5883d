"""Log lines are bounded with a notice; the event file is ingested idempotently."""

from __future__ import annotations

import io
import json

import pytest

from webapp.experiments.models import Artifact, Metric, MetricSummary
from worker.events import EventIngestor, EventReader
from worker.job_env import job_environment
from worker.logpump import LogPump


def test_log_output_past_the_limit_is_dropped_after_one_visible_notice():
    pump = LogPump(first_seq=5, max_bytes=50, max_lines=1000, kill_bytes=10_000)
    pump.attach("stdout", io.BytesIO(b"".join(b"line %d\n" % i for i in range(100))))
    pump.join(timeout=5)
    lines = pump.take()
    assert lines[0] == (5, "stdout", "line 0")
    assert [seq for seq, _, _ in lines] == list(range(5, 5 + len(lines)))
    assert "log truncated" in lines[-1][2] and lines[-1][1] == "stderr"
    assert len(lines) < 10 and pump.truncated and not pump.flooded


def test_job_environment_is_built_from_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("REDIS_URL", "redis://x")
    env = job_environment(run_id=1, attempt=2, run_dir=tmp_path, events=tmp_path / "e", config=tmp_path / "c",
                          resume=None, python_path=tmp_path, gpu_indices=[1, 3], python_bin=tmp_path)
    assert not {"SECRET_KEY", "REDIS_URL", "DATABASE_URL"} & set(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3" and env["HOME"] == str(tmp_path) and env["KILN_ATTEMPT"] == "2"


@pytest.fixture
def run(submit_code):
    return submit_code("print('hi')")


def _events_file(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-1.safetensors").write_bytes(b"weights")
    (tmp_path / "outside.txt").write_text("secret")
    (tmp_path / "checkpoints" / "link").symlink_to("/etc/hostname")
    events = [
        {"type": "metrics", "step": 0, "time": 1.0, "values": {"loss": 1.0, "acc": 0.5}},
        {"type": "metrics", "step": 1, "time": 2.0, "values": {"loss": 0.5}},
        {"type": "progress", "epoch": 1, "epochs": 2, "eta_seconds": 3.0, "time": 2.0},
        {"type": "checkpoint", "name": "step-1.safetensors", "path": "checkpoints/step-1.safetensors", "step": 1, "time": 2},
        {"type": "artifact", "name": "escape", "path": "../../etc/passwd", "time": 2},
        {"type": "artifact", "name": "link", "path": "checkpoints/link", "time": 2},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + "not json\n" + '{"type": "metrics", "st')
    return path


def test_ingesting_the_same_event_file_twice_stores_everything_once(run, tmp_path):
    path = _events_file(tmp_path)
    notes: list[str] = []
    for _ in range(2):  # a second reader is what a redelivery or a restarted tail would do
        events, problems = EventReader(path).read()
        notes += problems
        EventIngestor(run.id, tmp_path, notes.append).ingest(events)
    assert Metric.objects.filter(run=run).count() == 3
    assert MetricSummary.objects.get(run=run, key="loss").count == 2
    assert list(Artifact.objects.filter(run=run).values_list("name", "step")) == [("checkpoints/step-1.safetensors", 1)]
    run.refresh_from_db()
    assert run.progress["epoch"] == 1
    assert sum("malformed event line" in n for n in notes) == 2
    assert sum("not a regular file inside the run folder" in n for n in notes) == 4


def test_a_half_written_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "events"
    path.write_text('{"type": "metrics"')
    reader = EventReader(path)
    assert reader.read() == ([], [])
    with open(path, "a") as handle:
        handle.write(', "step": 0, "time": 1, "values": {}}\n')
    events, _ = reader.read()
    assert events == [{"type": "metrics", "step": 0, "time": 1, "values": {}}]
