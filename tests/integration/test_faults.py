"""Faults through the real cluster: a worker dying mid-run, and hostile jobs."""

from __future__ import annotations

import pytest
from cluster import CLUSTER_DISK_QUOTA, TEST_SECRET_KEY, job_processes, wait_for
from django.conf import settings
from services import require

from webapp.experiments.models import Artifact, RunEvent, RunState
from worker.sandbox import bwrap_path

pytestmark = pytest.mark.slow

SLOW_TRAIN = """
    import time
    import numpy as np
    from engine import track
    start = track.resume()
    if start is not None:
        print("resumed at step", start.step, "weights", float(start.state["w"][0]))
    for step in range(0 if start is None else start.step + 1, 20):
        track.log({"loss": 1.0 / (step + 1)}, step=step)
        track.save_checkpoint({"w": np.full(2, step, dtype=np.float32)}, step=step)
        time.sleep(0.25)
    print("done")
"""


def test_a_worker_killed_mid_run_loses_the_run_which_resumes_from_its_checkpoint_elsewhere(kiln):
    run = kiln.submit(SLOW_TRAIN)
    run = kiln.wait_state(run, (RunState.RUNNING,), 30)
    first_worker = run.worker.name
    wait_for(lambda: Artifact.objects.filter(run=run, kind="checkpoint", step__gte=3).exists(), 30,
             "no checkpoint before the crash", kiln.logs)
    spare = kiln.start("worker")
    kiln.kill(first_worker)
    wait_for(lambda: not job_processes(run.id), 5, "the dead worker's job kept running", kiln.logs)
    run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED), 90)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
    assert run.attempt == 2 and run.worker.name == spare
    story = list(RunEvent.objects.filter(run=run).values_list("to_state", flat=True))
    assert story == ["queued", "scheduled", "running", "lost", "queued", "scheduled", "running", "succeeded"]
    steps = list(run.metrics.filter(key="loss").order_by("step").values_list("step", flat=True))
    assert steps == list(range(20))  # nothing lost, nothing stored twice
    text = "\n".join(run.log_lines.order_by("seq").values_list("text", flat=True))
    assert "resuming from checkpoint step" in text and "resumed at step" in text


HOSTILE = {
    "fork_bomb": ("import os\nwhile True:\n    os.fork()\n", "processes"),
    "prints_gigabytes": ("line = 'y' * 4096\nwhile True:\n    print(line)\n", "printed more than"),
    "reads_secrets": ("""
        import glob, os
        print(dict(os.environ))
        for path in glob.glob("/proc/[0-9]*/environ"):
            try:
                print(path, open(path, "rb").read())
            except OSError as exc:
                print(path, exc)
        raise SystemExit("found nothing to steal")
    """, "found nothing to steal"),
    "opens_a_connection": ("import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=3)\n",
                           "Error"),
    "writes_a_huge_file": ("with open('big', 'wb') as f:\n    f.seek(64 * 2**30)\n    f.write(b'x')\n",
                           "File too large"),
    "segfaults": ("import ctypes\nctypes.string_at(0)\n", "SIGSEGV"),
    "reads_the_data_folder_and_other_runs": ("""
        import os, pathlib
        run_dir = pathlib.Path(os.environ["KILN_RUN_DIR"])
        data = run_dir.parents[2]  # KILN_DATA_DIR/runs/<run>/<attempt>
        stolen = []
        for path in [data / "secret_key", data / "kiln.sqlite3", *data.glob("artifacts/**/*"),
                     *data.glob("runs/*/*/main.py"), *data.glob("*.log")]:
            if path.is_file() and run_dir not in path.parents:
                try:
                    stolen.append((str(path), open(path, "rb").read(40)))
                except OSError:
                    pass
        print(stolen)
        raise SystemExit(f"stole {len(stolen)} files" if stolen else "found nothing to steal")
    """, "found nothing to steal"),
    "opens_a_connection_to_redis": ("import socket\nsocket.create_connection(('127.0.0.1', 6379), timeout=3)\n",
                                    "Error"),
    "opens_a_connection_to_the_web_port": ("import socket\nsocket.create_connection(('127.0.0.1', 8000), timeout=3)\n",
                                           "Error"),
    "leaves_a_daemon_behind": ("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
            os._exit(0)
        time.sleep(0.5)
        raise SystemExit("left a daemon behind")
    """, "left a daemon behind"),
    "fills_the_disk_with_many_files": ("""
        import os, time
        block = os.urandom(64 * 1024)
        for i in range(1_000_000):
            os.makedirs(f"junk/{i // 100}", exist_ok=True)
            with open(f"junk/{i // 100}/{i}", "wb") as f:
                f.write(block)
            time.sleep(0.001)
    """, "disk quota exceeded: wrote"),
    "hogs_memory": ("""
        import numpy
        hog = numpy.ones(2**30 // 8)  # 1 GiB, every page touched, against a 0.3 GB limit
        raise SystemExit(f"allocated {hog.nbytes} bytes")
    """, "out of memory: used"),
}
MEMORY_GB = {"hogs_memory": 0.3}


def test_hostile_jobs_each_fail_clearly_and_the_worker_keeps_serving(kiln):
    require(bwrap_path(settings.CONFIG.bwrap) is not None, "hostile jobs are contained only under bubblewrap (apt-get install bubblewrap); "
                                      "without it code runs are refused (tests/integration/test_unisolated_worker.py)")
    runs = {name: kiln.submit(source, memory_gb=MEMORY_GB.get(name)) for name, (source, _) in HOSTILE.items()}
    for name, run in runs.items():
        run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED), 120)
        expected = HOSTILE[name][1]
        assert run.state == RunState.FAILED, f"{name}: {kiln._run_story(run)}"
        assert expected in run.failure_reason, f"{name}: {run.failure_reason}"
        if name == "fills_the_disk_with_many_files":
            assert run.failure_reason.endswith(f"of {CLUSTER_DISK_QUOTA} allowed"), run.failure_reason
            assert not list((kiln.data_dir / "runs" / str(run.id)).glob("*/junk")), "its files were left behind"
        text = "\n".join(run.log_lines.values_list("text", flat=True))
        assert "attempt 1 on worker" in text
        assert TEST_SECRET_KEY not in text and "DATABASE_URL" not in text and "REDIS_URL" not in text
        assert not job_processes(run.id), f"{name} left processes behind"
    after = kiln.wait_state(kiln.submit("print('still serving')"), (RunState.SUCCEEDED, RunState.FAILED), 60)
    assert after.state == RunState.SUCCEEDED
