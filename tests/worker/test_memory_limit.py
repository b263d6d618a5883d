"""resources.memory_gb is enforced per job: a memory hog fails "out of memory", its neighbours run on."""

from __future__ import annotations

import re
import textwrap
import threading
import time

import pytest
from django.db import connection

from webapp.experiments.submit import CodeUpload, run_submit
from worker.executor import execute

HOG = """
    import numpy as np
    print("allocating 1 GB", flush=True)
    block = np.ones(2**30 // 8)  # every page touched
    print("survived", block.sum())
"""
NEIGHBOUR = """
    import time
    import numpy as np
    block = np.ones(50 * 2**20 // 8)
    print("neighbour started", flush=True)
    time.sleep(3)
    print("neighbour done", block.sum())
"""


@pytest.fixture
def submit_with_memory(db):
    from factories import ProjectFactory

    project = ProjectFactory()

    def submit(source: str, memory_gb: float | None = None):
        spec = {"resources": {"memory_gb": memory_gb}} if memory_gb is not None else {}
        code = CodeUpload(filename="main.py", data=textwrap.dedent(source).encode())
        return run_submit(user=project.owner_user, project=project, spec=spec, code=code).runs[0]

    return submit


@pytest.mark.django_db(transaction=True)
def test_a_memory_hog_fails_out_of_memory_while_its_neighbour_and_the_worker_go_on(
        submit_with_memory, claimed, settings, log_text):
    neighbour = claimed(submit_with_memory(NEIGHBOUR))
    hog = claimed(submit_with_memory(HOG, memory_gb=0.3))
    assert (hog.memory_gb, neighbour.memory_gb) == (0.3, settings.CONFIG.run_memory_gb)
    outcomes: dict = {}
    thread = threading.Thread(target=_execute, args=(neighbour, settings, outcomes))
    thread.start()
    deadline = time.monotonic() + 30
    while not neighbour.log_lines.filter(text="neighbour started").exists():
        assert time.monotonic() < deadline and thread.is_alive(), "the neighbour never started"
        time.sleep(0.1)
    started = time.monotonic()
    _execute(hog, settings, outcomes)
    thread.join(timeout=30)

    failed = outcomes[hog.id]
    assert failed.state == "failed" and time.monotonic() - started < 20
    assert failed.reason.startswith("out of memory: ") and "0.3 GB" in failed.reason, failed.reason
    if "memory limit: 0.3 GB (memory cgroup)" in log_text(hog):  # else RLIMIT_DATA refused the allocation
        assert re.fullmatch(r"out of memory: used 0\.\d+ of 0\.3 GB", failed.reason), failed.reason
    assert "survived" not in log_text(hog) and failed.reason in log_text(hog)
    assert outcomes[neighbour.id].state == "succeeded" and "neighbour done" in log_text(neighbour)
    after = claimed(submit_with_memory("print('still serving')"))
    _execute(after, settings, outcomes)
    assert outcomes[after.id].state == "succeeded"


def _execute(run, settings, outcomes: dict) -> None:
    """Execute as the worker does: the limits come from the run's row (resources.memory_gb)."""
    try:
        outcomes[run.id] = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()


def test_without_a_memory_cgroup_rlimit_data_refuses_the_hog(submit_with_memory, claimed, settings, log_text,
                                                             monkeypatch, tmp_path):
    from worker import cgroup

    monkeypatch.setattr(cgroup, "V1_MEMORY", tmp_path / "no-memory-controller")
    monkeypatch.setattr(cgroup, "V2_ROOT", tmp_path / "no-cgroup2")
    hog = claimed(submit_with_memory(HOG, memory_gb=0.3))
    outcomes: dict = {}
    _execute(hog, settings, outcomes)
    assert "memory limit: 0.3 GB (RLIMIT_DATA: no memory cgroup here)" in log_text(hog)
    reason = outcomes[hog.id].reason
    assert outcomes[hog.id].state == "failed" and reason.startswith("out of memory: asked for more than its 0.3 GB: ")
    assert "MemoryError" in reason and "survived" not in log_text(hog)
