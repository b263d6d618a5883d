"""One live process per worker name, and a stopping worker gets none of its runs back (findings 6 and 7).

Real `kiln worker` processes on one host: a second process with the default name (the host's), a
restart that overlaps the old process, and a SIGTERM whose run is re-queued. No run fails for any of
it and no attempt is wasted. The scheduler here waits 60 s before it gives up a silent worker, so
every hand-back below is the workers' own doing.
"""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest
from cluster import Cluster, wait_for
from factories import ProjectFactory

from webapp.cluster.models import Worker
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import CodeUpload, run_submit
from worker.identity import EXIT_NAME_TAKEN

pytestmark = pytest.mark.slow
HOST = os.uname().nodename  # what KILN_WORKER_NAME defaults to
ENDED = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)

TICKING = """
    import time
    from engine import track
    for step in range(int(track.config["steps"])):
        track.log({"loss": 1.0 / (step + 1)}, step=step)
        time.sleep(0.1)
"""


@pytest.fixture(scope="module")
def own_workers(cluster):
    """The module's cluster with its default worker stopped, and a scheduler patient with silent workers."""
    for key in list(cluster.procs):
        cluster.stop(key)
    cluster.env["KILN_WORKER_TIMEOUT"] = "60"  # silence is never what hands a run back in these tests
    cluster.env["KILN_ALLOW_UNISOLATED_CODE"] = "1"  # worker identity is under test here, not the sandbox
    cluster.start("scheduler")
    return cluster


@pytest.fixture
def kiln(own_workers, transactional_db):
    own_workers.project = ProjectFactory()
    yield own_workers
    for key in [k for k in own_workers.procs if not k.startswith("scheduler")]:
        own_workers.stop(key)


def _worker(kiln: Cluster, name: str, key: str) -> subprocess.Popen:
    """Start a worker process and wait until it holds its name."""
    proc = kiln.spawn("worker", name, key=key)
    wait_for(lambda: Worker.objects.filter(name=name, pid=proc.pid, stopped_at__isnull=True).exists(), 60,
             f"worker {key} never registered as {name}", kiln.logs)
    return proc


def _refused(kiln: Cluster, name: str, key: str) -> str:
    """Start a worker that must refuse to start; returns its log."""
    proc = kiln.spawn("worker", name, key=key)
    assert proc.wait(timeout=60) == EXIT_NAME_TAKEN, kiln.logs()
    kiln.procs.pop(key)
    return (kiln.data_dir / f"{key}.log").read_text(errors="replace")


def _submit(project, steps: int) -> Run:
    code = CodeUpload(filename="main.py", data=textwrap.dedent(TICKING).encode())
    spec = {"params": {"steps": steps}, "resources": {"max_minutes": 5}}
    return run_submit(user=project.owner_user, project=project, spec=spec, code=code).runs[0]


def _losses(run: Run) -> list[tuple[int, str]]:
    return list(run.events.filter(to_state=RunState.LOST).values_list("attempt", "reason"))


def test_a_second_worker_with_the_default_name_refuses_and_the_first_keeps_serving(kiln):
    first = _worker(kiln, HOST, "first")
    runs = [_submit(kiln.project, 40), _submit(ProjectFactory(), 40)]  # two users' runs
    for run in runs:
        kiln.wait_state(run, (RunState.RUNNING,), 60)
    log = _refused(kiln, HOST, "second")
    assert f"pid {first.pid} on {HOST}" in log and "KILN_WORKER_NAME" in log, log
    for run in runs:
        run = kiln.wait_state(run, ENDED, 90)
        assert (run.state, run.attempt, _losses(run)) == (RunState.SUCCEEDED, 1, []), kiln._run_story(run)
    assert Worker.objects.get(name=HOST).pid == first.pid
    after = kiln.wait_state(_submit(kiln.project, 2), ENDED, 60)  # and it still serves
    assert after.state == RunState.SUCCEEDED, kiln._run_story(after)


def test_a_restart_overlapping_the_old_process_takes_over_only_once_the_old_one_is_gone(kiln):
    old = _worker(kiln, "restarting", "old")
    run = kiln.wait_state(_submit(kiln.project, 600), (RunState.RUNNING,), 60)
    assert "restarting" in _refused(kiln, "restarting", "early")  # the old process still lives
    kiln.kill("old")
    new = _worker(kiln, "restarting", "new")  # at once: well within the 60 s worker timeout
    assert new.pid != old.pid
    wait_for(lambda: _losses(run) != [], 30, "the new process did not hand the old one's run back", kiln.logs)
    assert _losses(run) == [(1, "worker restarting restarted while it ran")]  # exactly once, by the new process
    run = kiln.wait_state(run, (RunState.RUNNING,), 60)
    assert run.attempt == 2 and run.worker.name == "restarting"


def test_a_run_handed_back_at_sigterm_goes_to_another_worker_and_wastes_no_attempt(kiln):
    _worker(kiln, "stopping", "stopping")
    run = kiln.wait_state(_submit(kiln.project, 60), (RunState.RUNNING,), 60)
    _worker(kiln, "staying", "staying")
    assert kiln.stop("stopping") == 0
    stopped = Worker.objects.get(name="stopping")
    assert stopped.draining and stopped.stopped_at is not None
    run = kiln.wait_state(run, ENDED, 90)
    assert run.state == RunState.SUCCEEDED and run.worker.name == "staying", kiln._run_story(run)
    assert run.attempt == 2 and [attempt for attempt, _ in _losses(run)] == [1]
