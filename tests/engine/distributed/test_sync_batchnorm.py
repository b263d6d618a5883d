"""SyncBatchNorm at 2 CPU ranks on the MPI backend against BatchNorm on the global batch."""


def test_sync_batchnorm_equals_batchnorm_on_the_global_batch(run_ranks, scripts):
    result = run_ranks(2, str(scripts / "sync_batchnorm_check.py"))
    assert result.returncode == 0, result.stdout + result.stderr
    for r in range(2):
        assert f"[rank {r}] sync batchnorm ok {r}/2" in result.stdout
