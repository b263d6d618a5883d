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
