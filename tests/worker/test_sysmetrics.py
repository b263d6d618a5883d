"""System metrics: CPU and memory of the job's processes, logged under sys/."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import worker.executor
from worker.sysmetrics import SystemSampler, process_tree


def test_the_sampler_reports_cpu_memory_and_process_count_under_sys():
    sampler = SystemSampler(lambda: process_tree(os.getpid()), gpu_indices=[])
    sampler.sample()
    sum(i * i for i in range(200_000))
    points = {p.key: p for p in sampler.sample()}
    assert {"sys/cpu_percent", "sys/memory_mb", "sys/processes"} <= set(points)
    assert points["sys/memory_mb"].value > 1 and points["sys/processes"].value >= 1
    assert points["sys/cpu_percent"].step == 1  # the second sample; its time is its wall_time
    assert abs(points["sys/cpu_percent"].wall_time - time.time()) < 60


def test_a_running_job_gets_system_metrics(run_job, monkeypatch):
    monkeypatch.setattr(worker.executor, "SYSTEM_EVERY", 0.5)
    run, outcome = run_job("import time\nend = time.time() + 2.5\nwhile time.time() < end:\n    pass\n")
    assert outcome.state == "succeeded"
    keys = set(run.metrics.values_list("key", flat=True))
    assert {"sys/cpu_percent", "sys/memory_mb", "sys/processes"} <= keys
    assert max(run.metrics.filter(key="sys/cpu_percent").values_list("value", flat=True)) > 20
    steps = list(run.metrics.filter(key="sys/cpu_percent").order_by("step").values_list("step", flat=True))
    assert steps == list(range(len(steps)))  # numbered samples, never unix times


def test_each_distributed_rank_gets_its_own_cpu_and_memory_its_children_counted_in():
    busy = "import os, time\nend = time.time() + 3\nwhile time.time() < end: pass\n"
    spawn_child = ("import subprocess, sys, time\n"
                   f"subprocess.Popen([sys.executable, '-c', {busy!r}]); time.sleep(3)\n")
    ranks = [subprocess.Popen([sys.executable, "-c", busy], env={**os.environ, "RANK": "0"}),
             subprocess.Popen([sys.executable, "-c", spawn_child], env={**os.environ, "RANK": "1"}),
             subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])]  # a launcher: no RANK
    try:
        sampler = SystemSampler(lambda: [p for r in ranks for p in process_tree(r.pid)], gpu_indices=[])
        time.sleep(0.3)
        sampler.sample()
        time.sleep(1.0)
        points = {p.key: p.value for p in sampler.sample()}
    finally:
        for r in ranks:
            r.kill()
            r.wait()
    assert {"sys/rank0/cpu_percent", "sys/rank1/cpu_percent", "sys/rank0/memory_mb"} <= set(points)
    assert not any(key.startswith("sys/rank2") for key in points)
    assert points["sys/rank0/cpu_percent"] > 5 and points["sys/rank1/cpu_percent"] > 5  # rank 1's child counts
    assert points["sys/rank0/memory_mb"] > 1
