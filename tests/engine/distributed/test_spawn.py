"""engine.multiprocessing.spawn: ranks that rendezvous on MASTER_ADDR/MASTER_PORT; a raising rank is named."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "spawn_check.py"


def _spawn(port: int, *extra: str):
    return subprocess.run([sys.executable, str(SCRIPT), str(port), *extra], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_spawned_ranks_meet_through_env(mpi, port):
    result = _spawn(port)
    assert result.returncode == 0, result.stderr
    assert "spawned 0 sum=[1.0, 1.0]" in result.stdout and "spawned 1 sum=[1.0, 1.0]" in result.stdout
    assert "spawn ok" in result.stdout


def test_a_raising_process_is_named(mpi, port):
    result = _spawn(port, "fail")  # the port of the run above: its leftovers must not be met
    assert result.returncode != 0
    assert "ProcessRaisedException" in result.stderr and "Process 1 terminated" in result.stderr
    assert "KeyError: 'rank one failed'" in result.stderr
