"""DistributedDataParallel: 5 steps at 2 and 4 ranks equal one process on the global batch (SGD momentum, Adam);
no_sync accumulation equals the larger batch; buffers broadcast; unused parameters (scripts/ddp_check.py)."""

import pytest


@pytest.mark.parametrize("nproc", [2, 4])
def test_ddp_equals_single_process_training(run_ranks, scripts, nproc):
    result = run_ranks(nproc, str(scripts / "ddp_check.py"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ddp ok") == nproc
