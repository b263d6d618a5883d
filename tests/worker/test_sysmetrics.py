"""System metrics: CPU and memory of the job's processes, logged under sys/."""

from __future__ import annotations

import os
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
