"""Ranks meeting through Redis (KILN_RENDEZVOUS_URL, db 13), and two 'nodes' started by two launchers."""

import os
import subprocess
import sys
import time
from pathlib import Path

from services import reachable, require

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = Path(__file__).parent / "scripts"
REDIS = "redis://127.0.0.1:6379/13"


def test_ranks_meet_through_redis(run_ranks, scripts):
    require(reachable(REDIS, 6379), f"Redis is not answering at {REDIS}")
    env = dict(os.environ, KILN_RENDEZVOUS_URL=f"{REDIS}#test-rdzv-{os.getpid()}-{time.monotonic_ns()}")
    result = run_ranks(2, str(scripts / "allreduce_check.py"), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("allreduce ok") == 2


def test_two_nodes_through_a_redis_endpoint(mpi):
    require(reachable(REDIS, 6379), f"Redis is not answering at {REDIS}")
    run_id = f"test-nodes-{os.getpid()}-{time.monotonic_ns()}"
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "engine.distributed.run", "--nnodes=2", f"--node_rank={n}", "--nproc_per_node=1",
         f"--rdzv_endpoint={REDIS}", f"--rdzv_id={run_id}", str(SCRIPTS / "allreduce_check.py")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]
    outs = [p.communicate(timeout=120) for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], [o[1] for o in outs]
    assert "[rank 0] allreduce ok 0/2" in outs[0][0] and "[rank 1] allreduce ok 1/2" in outs[1][0]
