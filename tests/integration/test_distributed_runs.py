"""Multi-node runs on real `kiln worker` processes: a 2-node DDP run, and losing one of its workers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cluster import job_processes, wait_for
from django.conf import settings

from webapp.experiments.models import Artifact, NodeState, RunEvent, RunNode, RunState
from webapp.experiments.submit import CodeUpload, run_submit
from worker.gang_network import gang_network_possible
from worker.sandbox import bwrap_path

DDP_TRAIN = (Path(__file__).parent / "scripts" / "ddp_train.py").read_bytes()


def submit_gang(kiln, *, steps: int, pause: float = 0.0):
    spec = {"params": {"steps": steps, "pause": pause},
            "resources": {"nodes": 2, "cpus_per_node": 1, "max_minutes": 5},
            "distributed": {"processes_per_node": 1}}
    return run_submit(user=kiln.project.owner_user, project=kiln.project, spec=spec,
                      code=CodeUpload(filename="train.py", data=DDP_TRAIN)).runs[0]


def log_of(run) -> str:
    return "\n".join(run.log_lines.order_by("seq").values_list("text", flat=True))


def test_a_two_node_ddp_run_is_placed_on_two_workers_and_succeeds(kiln):
    kiln.start("worker")
    run = submit_gang(kiln, steps=4)
    run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED), 120)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
    nodes = list(RunNode.objects.filter(run=run).values_list("node_rank", "worker_name", "state"))
    assert [n[0] for n in nodes] == [0, 1] and len({n[1] for n in nodes}) == 2
    assert {n[2] for n in nodes} == {NodeState.SUCCEEDED}
    assert sorted(run.metrics.filter(key="loss").values_list("step", flat=True)) == [0, 1, 2, 3]
    assert set(run.metrics.filter(key="world_size").values_list("value", flat=True)) == {2.0}
    text = log_of(run)
    assert "[rank 0] rank 0 of 2 finished step 3" in text and "[rank 1] rank 1 of 2 finished step 3" in text
    assert "(node 1 of 2)" in text
    if bwrap_path(settings.CONFIG.bwrap) and gang_network_possible():  # both workers on this host: their own network
        assert text.count("sandbox: bubblewrap (network only to the run's other nodes") == 2


@pytest.mark.slow  # about a minute: two placements, a worker timeout, a resume
def test_losing_one_worker_of_a_gang_requeues_the_whole_gang_which_resumes_from_its_checkpoint(kiln):
    if sum(name.startswith("worker-") for name in kiln.procs) < 2:  # two, ready: a fresh one takes seconds
        kiln.start("worker")
    run = submit_gang(kiln, steps=14, pause=0.3)
    run = kiln.wait_state(run, (RunState.RUNNING,), 60)
    # NOTE: a spare, so the gang has two live workers after the kill. It starts while the gang runs and the
    # loss is noticed: waiting for it before the kill took seconds, in which the gang could finish.
    spare = f"worker-{uuid.uuid4().hex[:8]}"
    kiln.spawn("worker", spare, key=spare)
    wait_for(lambda: Artifact.objects.filter(run=run, kind="checkpoint", step__gte=3).exists(), 60,
             "no checkpoint before the crash", lambda: kiln._run_story(run))
    victim = RunNode.objects.get(run=run, attempt=1, node_rank=1).worker_name
    kiln.kill(victim)
    wait_for(lambda: not job_processes(run.id), 30, "ranks kept running after their gang was lost", kiln.logs)
    run = kiln.wait_state(run, (RunState.SUCCEEDED, RunState.FAILED), 180)
    assert run.state == RunState.SUCCEEDED, kiln._run_story(run)
    assert run.attempt == 2
    story = list(RunEvent.objects.filter(run=run).values_list("to_state", flat=True))
    assert story == ["queued", "scheduled", "running", "lost", "queued", "scheduled", "running", "succeeded"]
    second = set(RunNode.objects.filter(run=run, attempt=2).values_list("worker_name", flat=True))
    assert victim not in second and len(second) == 2  # moved off the dead worker (the spare or an earlier one)
    steps = list(run.metrics.filter(key="loss").order_by("step").values_list("step", flat=True))
    assert steps == list(range(14))  # nothing lost, nothing stored twice
    assert "resumes at step" in log_of(run)
