"""System metrics of a running job: CPU and memory of its processes (and of each distributed rank,
as `sys/rank<r>/...`), and its GPUs through NVML.

Logged as metrics under `sys/` (`results.SYSTEM_PREFIX`): series over wall time. Each point's
`wall_time` is when it was sampled (what the run page and the API chart them against); its step is
the sample's number in the run's system sequence (as MLflow's system metrics count theirs), which
an attempt continues from the run's stored sequence (`results.system_next_step`), so the samples
of every attempt stay distinct and a resent sample is stored once.
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

    def __init__(self, pids: Callable[[], list[int]], gpu_indices: list[int], prefix: str = PREFIX, first_step: int = 0):
        if isinstance(first_step, bool) or not isinstance(first_step, int) or first_step < 0:
            raise ValueError(f"first_step must be a non-negative integer, got {first_step!r:.40}")
        self._prefix = prefix  # a multi-node run's node k > 0 logs under sys/node<k>/
        self._step = first_step  # the next sample's number
        self._pids = pids
        self._gpu_indices = gpu_indices
        self._procs: dict[int, psutil.Process] = {}
        self._ranks: dict[int, int | None] = {}  # pid -> its RANK (read once: a process's environment is fixed)
        self._nvml = _nvml()

    def sample(self) -> list[MetricPoint]:
        now = time.time()
        step = self._step
        self._step += 1
        cpu = rss = 0.0
        per_rank: dict[int, list[float]] = {}
        alive: dict[int, psutil.Process] = {}
        for pid in self._pids():
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = psutil.Process(pid)
                    proc.cpu_percent(None)  # the first call only starts the measurement
                    used = 0.0
                else:
                    used = proc.cpu_percent(None)
                memory = proc.memory_info().rss
                alive[pid] = proc
            except psutil.Error:
                continue
            cpu += used
            rss += memory
            rank = self._rank_of(proc)
            if rank is not None:
                totals = per_rank.setdefault(rank, [0.0, 0.0])
                totals[0] += used
                totals[1] += memory
        self._procs = alive
        self._ranks = {pid: rank for pid, rank in self._ranks.items() if pid in alive}
        values = {"cpu_percent": cpu, "memory_mb": rss / 2**20, "processes": float(len(alive))}
        for rank, (used, memory) in sorted(per_rank.items()):
            values[f"rank{rank}/cpu_percent"] = used
            values[f"rank{rank}/memory_mb"] = memory / 2**20
        values.update(self._gpu_values())
        return [MetricPoint(key=self._prefix + key, step=step, value=value, wall_time=now) for key, value in values.items()]

    def _rank_of(self, proc: psutil.Process) -> int | None:
        """The distributed rank a process works for: RANK in its environment, which the launcher
        sets for each rank and the rank's own children (DataLoader workers) inherit."""
        if proc.pid not in self._ranks:
            try:
                rank = proc.environ().get("RANK", "")
            except psutil.Error:
                rank = ""
            self._ranks[proc.pid] = int(rank) if rank.isdigit() else None
        return self._ranks[proc.pid]

    def _gpu_values(self) -> dict[str, float]:
        """Per pinned GPU: utilisation, memory used/total, power and temperature (what NVML answers)."""
        if self._nvml is None:
            return {}
        nvml = self._nvml
        readings: dict[str, Callable[[Any], float]] = {
            "util_percent": lambda h: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu),
            "memory_util_percent": lambda h: float(nvml.nvmlDeviceGetUtilizationRates(h).memory),
            "memory_mb": lambda h: nvml.nvmlDeviceGetMemoryInfo(h).used / 2**20,
            "memory_total_mb": lambda h: nvml.nvmlDeviceGetMemoryInfo(h).total / 2**20,
            "power_watts": lambda h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0,  # NVML reports milliwatts
            "temperature_c": lambda h: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
        }
        values: dict[str, float] = {}
        for index in self._gpu_indices:
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except Exception as exc:  # NVML raises its own error types per failure
                log.debug("NVML has no GPU %s: %s", index, exc)
                continue
            for key, read in readings.items():
                try:
                    values[f"gpu{index}/{key}"] = read(handle)
                except Exception as exc:  # e.g. NVMLError_NotSupported: power on some boards
                    log.debug("NVML %s of GPU %s failed: %s", key, index, exc)
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
