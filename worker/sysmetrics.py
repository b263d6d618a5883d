"""System metrics of a running job: CPU and memory of its processes, and its GPUs through NVML.

Logged as ordinary metrics under `sys/`, with the wall-clock second as the step, so the
samples of every attempt line up on one time axis and never collide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psutil

from webapp.experiments.results import MetricPoint

log = logging.getLogger(__name__)
PREFIX = "sys/"


class SystemSampler:
    """`sample()` returns metric points for the processes `pids()` names and the job's GPUs."""

    def __init__(self, pids: Callable[[], list[int]], gpu_indices: list[int]):
        self._pids = pids
        self._gpu_indices = gpu_indices
        self._procs: dict[int, psutil.Process] = {}
        self._nvml = _nvml()

    def sample(self) -> list[MetricPoint]:
        now = time.time()
        step = int(now)
        cpu = rss = 0.0
        alive: dict[int, psutil.Process] = {}
        for pid in self._pids():
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = psutil.Process(pid)
                    proc.cpu_percent(None)  # the first call only starts the measurement
                else:
                    cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
                alive[pid] = proc
            except psutil.Error:
                continue
        self._procs = alive
        values = {"cpu_percent": cpu, "memory_mb": rss / 2**20, "processes": float(len(alive))}
        values.update(self._gpu_values())
        return [MetricPoint(key=PREFIX + key, step=step, value=value, wall_time=now) for key, value in values.items()]

    def _gpu_values(self) -> dict[str, float]:
        if self._nvml is None:
            return {}
        values: dict[str, float] = {}
        for index in self._gpu_indices:
            try:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:  # NVML raises its own error types per failure
                log.debug("NVML sample of GPU %s failed: %s", index, exc)
                continue
            values[f"gpu{index}/util_percent"] = float(util.gpu)
            values[f"gpu{index}/memory_mb"] = memory.used / 2**20
        return values


def process_tree(root_pid: int) -> list[int]:
    """The pid and every descendant (for machines without a pids cgroup)."""
    try:
        root = psutil.Process(root_pid)
        return [root_pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


def _nvml() -> Any:
    """pynvml, initialised, when it is installed and a driver answers; NVML does not initialise CUDA."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # missing module, missing driver: no GPU metrics
        return None
