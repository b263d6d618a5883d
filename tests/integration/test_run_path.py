"""Submit -> scheduled -> running -> succeeded through real scheduler and worker processes."""

from __future__ import annotations

import time

import pytest
from cluster import job_processes, wait_for

from webapp.experiments.lifecycle import run_cancel
from webapp.experiments.models import Artifact, RunEvent, RunState
from worker.celery_app import make_celery_app, send_run

pytestmark = pytest.mark.slow

TRAIN = """
    import time
    import numpy as np
    from engine import track
    start = track.resume()
    steps = int(track.config["steps"])
    for step in range(0 if start is None else start.step + 1, steps):
        track.log({"loss": 1.0 / (step + 1)}, step=step)
        track.progress(epoch=step + 1, epochs=steps)
        track.save_checkpoint({"w": np.full(4, step, dtype=np.float32)}, step=step)
        time.sleep(float(track.config.get("sleep", 0)))
    print("finished", steps, "steps")
"""


def test_a_code_run_is_placed_run_and_stored(kiln):
    run = kiln.submit(TRAIN, params={"steps": 5})
    run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED), 60)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
    story = list(RunEvent.objects.filter(run=run).values_list("to_state", flat=True))
    assert story == ["queued", "scheduled", "running", "succeeded"]
    assert sorted(run.metrics.filter(key="loss").values_list("step", flat=True)) == [0, 1, 2, 3, 4]
    assert run.progress["epoch"] == 5
    checkpoint = Artifact.objects.filter(run=run, kind="checkpoint").order_by("-step").first()
    assert checkpoint.step == 4 and (kiln.data_dir / "artifacts" / checkpoint.storage_path).stat().st_size == checkpoint.size
    assert "finished 5 steps" in "\n".join(run.log_lines.values_list("text", flat=True))


def test_a_message_delivered_twice_runs_the_job_once(kiln):
    run = kiln.submit(TRAIN, params={"steps": 3, "sleep": 0.5})
    run = kiln.wait_state(run, (RunState.RUNNING,), 30)
    with make_celery_app() as app:
        send_run(app, run_id=run.id, attempt=run.attempt, worker_name=run.worker.name)  # a duplicate delivery
    run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED), 60)
    time.sleep(1.0)  # give the duplicate time to be (not) executed
    assert run.state == RunState.SUCCEEDED
    assert RunEvent.objects.filter(run=run, to_state=RunState.RUNNING).count() == 1
    texts = list(run.log_lines.values_list("text", flat=True))
    assert sum("finished 3 steps" in t for t in texts) == 1


def test_cancel_stops_the_whole_process_tree_within_five_seconds(kiln):
    script = """
        import os, subprocess, sys, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(300)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        print("children started", flush=True)
        time.sleep(300)
    """
    run = kiln.submit(script)
    run = kiln.wait_state(run, (RunState.RUNNING,), 30)
    wait_for(lambda: run.log_lines.filter(text__contains="children started").exists(), 30, "job never started",
             kiln.logs)
    assert len(job_processes(run.id)) >= 3
    assert run_cancel(user=run.owner, run=run)
    cancelled_at = time.monotonic()
    wait_for(lambda: not job_processes(run.id), 5, "the job's processes outlived the cancel", kiln.logs)
    assert time.monotonic() - cancelled_at < 5
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    wait_for(lambda: run.log_lines.filter(text__contains="cancelled").exists(), 10, "no cancel note", kiln.logs)
