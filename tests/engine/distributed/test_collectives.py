"""Every collective at 2 and 4 CPU ranks against NumPy (the checks live in scripts/collectives_check.py)."""

import pytest


@pytest.mark.parametrize("nproc", [2, 4])
def test_every_collective_matches_numpy(run_ranks, scripts, nproc):
    result = run_ranks(nproc, str(scripts / "collectives_check.py"))
    assert result.returncode == 0, result.stdout + result.stderr
    for r in range(nproc):
        assert f"[rank {r}] collectives ok {r}/{nproc}" in result.stdout
