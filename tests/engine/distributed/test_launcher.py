"""The launcher: torchrun's variables, per-rank prefixes, a failing rank named and the others stopped."""

import subprocess
import sys
import time

import pytest

from engine.distributed import run


def test_sets_torchrun_variables_and_prefixes_each_rank(run_ranks, scripts):
    result = run_ranks(2, str(scripts / "env_check.py"))
    assert result.returncode == 0, result.stderr
    for r in range(2):
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"[rank {r}] env "))
        assert f"RANK={r} LOCAL_RANK={r} WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1" in line


def test_a_failing_rank_ends_the_launch_naming_it(run_ranks, scripts):
    start = time.monotonic()
    result = run_ranks(3, str(scripts / "env_check.py"), "fail", "1")
    assert time.monotonic() - start < 30  # the sleeping ranks were stopped, not waited for
    assert result.returncode == 1
    assert "rank 1 (local_rank 1" in result.stderr and "exited with code 1" in result.stderr
    assert "ValueError: boom on rank 1" in result.stderr
    assert "[rank 1] ValueError: boom on rank 1" in result.stderr


def test_module_mode_and_underscore_flags():
    cmd = [sys.executable, "-m", "engine.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "json.tool", "--help"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "[rank 0] usage: python -m json.tool" in result.stdout
    assert "[rank 1] usage: python -m json.tool" in result.stdout


def test_bad_flags_are_refused():
    with pytest.raises(SystemExit, match="nproc-per-node"):
        run.launch(["--nproc-per-node", "zero", "x.py"])
    with pytest.raises(SystemExit, match="Redis"):
        run.launch(["--nnodes", "2", "--nproc-per-node", "1", "x.py"])
    with pytest.raises(SystemExit, match="elastic"):
        run.launch(["--nnodes", "1:4", "x.py"])
    with pytest.raises(SystemExit, match="0 or more"):
        run.launch(["--max-restarts", "-1", "x.py"])
    with pytest.raises(SystemExit, match="one-node launch"):
        run.launch(["--nnodes", "2", "--rdzv-endpoint", "redis://127.0.0.1:6379/15", "--max-restarts", "1", "x.py"])


FLAKY_ONCE = """
import os, sys, engine as torch, engine.distributed as dist
dist.init_process_group("gloo")
restart = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
if restart == 0 and dist.get_rank() == 1:
    sys.exit(3)  # the first round fails; the restarted ranks meet again in a fresh store
t = torch.ones(1)
dist.all_reduce(t)
print(f"round {restart} of {os.environ['TORCHELASTIC_MAX_RESTARTS']}: sum {t.item():.0f}", flush=True)
dist.destroy_process_group()
"""


def test_max_restarts_starts_every_rank_again_after_a_failure(tmp_path):
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY_ONCE)
    cmd = [sys.executable, "-m", "engine.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--max-restarts", "2", str(script)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "rank 1 (local_rank 1" in result.stderr and "exited with code 3" in result.stderr
    assert "restarting the ranks (1 of 2 restarts)" in result.stderr
    assert "[rank 0] round 1 of 2: sum 2" in result.stdout and "[rank 1] round 1 of 2: sum 2" in result.stdout
    no_retry = subprocess.run([*cmd[:-3], "--max-restarts", "0", str(script)], capture_output=True, text=True,
                              timeout=120)
    assert no_retry.returncode == 3 and "restarting" not in no_retry.stderr
