"""resources.cpus is enforced: each job is pinned to CPUs no other running job holds."""

from __future__ import annotations

import os
import sys

import pytest

from worker.cpus import CPU_GRANTS, CpuGrants, host_cpus
from worker.process import JobProcess


def test_jobs_get_the_first_cpus_no_other_job_holds():
    grants = CpuGrants([0, 1, 2, 3])

    assert grants.grant("a", 2) == (0, 1)
    assert grants.grant("b", 1) == (2,)
    grants.release("a")
    assert grants.grant("c", 3) == (0, 1, 3)


def test_more_slots_than_cpus_share_the_least_held_cpus():
    grants = CpuGrants([0, 1])

    assert grants.grant("a", 1) == (0,)
    assert grants.grant("b", 1) == (1,)
    assert grants.grant("c", 1) == (0,)
    assert grants.grant("d", 5) == (0, 1)  # never more than the host has


def test_no_pinning_where_the_platform_cannot():
    assert CpuGrants([]).grant("a", 2) == ()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_a_job_runs_only_on_its_granted_cpus(tmp_path):
    cpu = host_cpus()[-1]
    job = JobProcess([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                     cwd=tmp_path, env={}, rlimits=[], cgroup=None, cpus=(cpu,))
    out, _ = job.popen.communicate(timeout=30)

    assert job.popen.returncode == 0
    assert out.decode().strip() == f"[{cpu}]"


@pytest.mark.skipif(len(host_cpus()) < 2, reason="needs two CPUs to show a held one is skipped")
def test_the_executor_pins_a_run_to_cpus_other_jobs_do_not_hold(run_job, log_text):
    held = CPU_GRANTS.grant("another-job", 1)
    try:
        run, outcome = run_job("import os\nprint('affinity', sorted(os.sched_getaffinity(0)))\n")
    finally:
        CPU_GRANTS.release("another-job")

    assert outcome.state == "succeeded"
    assert run.cpus == 1  # resources.cpus defaults to one
    free = [cpu for cpu in host_cpus() if cpu not in held]
    assert f"affinity [{free[0]}]" in log_text(run)
    assert CPU_GRANTS.granted() == {}  # the run gave its CPU back
