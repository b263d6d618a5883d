"""Distributed runs on one worker: the ranks start through engine.distributed.run inside the sandbox."""

from __future__ import annotations

from pathlib import Path

from factories import ProjectFactory
from services import require

from webapp.cluster.services import worker_register
from webapp.experiments.models import Artifact, RunNode
from webapp.experiments.submit import CodeUpload, run_submit
from worker.executor import execute
from worker.limits import JobLimits
from worker.sandbox import bwrap_path

DDP_TRAIN = Path(__file__).resolve().parents[1] / "integration" / "scripts" / "ddp_train.py"


def submit_ddp(*, processes: int, steps: int = 3, source: bytes | None = None):
    project = ProjectFactory()
    spec = {"params": {"steps": steps}, "resources": {"cpus": processes},
            "distributed": {"processes_per_node": processes}}
    upload = CodeUpload(filename="train.py", data=source if source is not None else DDP_TRAIN.read_bytes())
    return run_submit(user=project.owner_user, project=project, spec=spec, code=upload).runs[0]


def test_processes_per_node_start_that_many_ranks_and_only_rank_0_records(claimed, settings, log_text):
    run = claimed(submit_ddp(processes=2))
    outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                      limits=JobLimits(wall_seconds=120))
    log = log_text(run)
    assert (outcome.state, outcome.exit_code) == ("succeeded", 0), log
    assert "[rank 0] rank 0 of 2 finished step 2" in log and "[rank 1] rank 1 of 2 finished step 2" in log
    assert "started by engine.distributed.run" in log
    # one series and one checkpoint per step: rank 1's track calls were no-ops
    assert sorted(run.metrics.filter(key="loss").values_list("step", flat=True)) == [0, 1, 2]
    assert set(run.metrics.filter(key="world_size").values_list("value", flat=True)) == {2.0}
    assert list(Artifact.objects.filter(run=run, kind="checkpoint").order_by("step").values_list("step", flat=True)) \
        == [0, 1, 2]


def test_a_failing_rank_fails_the_run_naming_the_rank(claimed, settings):
    source = (b"import os, engine.distributed as dist\n"
              b"dist.init_process_group('gloo')\n"
              b"if dist.get_rank() == 1:\n    raise ValueError('rank one broke')\n"
              b"dist.barrier()\n")
    run = claimed(submit_ddp(processes=2, source=source))
    outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                      limits=JobLimits(wall_seconds=60))
    assert outcome.state == "failed"
    assert "rank 1" in outcome.reason and "rank one broke" in outcome.reason


def test_a_node_whose_peers_are_on_another_host_is_refused_without_the_host_network_setting(claimed, settings):
    require(bwrap_path(settings.CONFIG.bwrap) is not None, "bubblewrap is not usable here")
    project = ProjectFactory()
    spec = {"resources": {"nodes": 2, "cpus_per_node": 1}, "distributed": {"processes_per_node": 1}}
    run = claimed(run_submit(user=project.owner_user, project=project, spec=spec,
                             code=CodeUpload(filename="train.py", data=DDP_TRAIN.read_bytes())).runs[0])
    far = worker_register(name="w-far", hostname="another-host", queue="q2", cpu_slots=1, gpus=[])
    RunNode.objects.create(run=run, attempt=run.attempt, node_rank=0, worker=run.worker, worker_name="w-test")
    RunNode.objects.create(run=run, attempt=run.attempt, node_rank=1, worker=far, worker_name="w-far")
    outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                      limits=JobLimits(wall_seconds=30))
    assert outcome.state == "failed" and "KILN_DISTRIBUTED_HOST_NETWORK=1" in outcome.reason
    assert "another-host" in outcome.reason
