"""Resource limits for one job: applied in the child with setrlimit, plus a pids cgroup."""

from __future__ import annotations

import resource
from dataclasses import dataclass

import psutil

MB = 1024 * 1024
DEFAULT_DISK_BYTES = 10 * 10**9


@dataclass(frozen=True)
class JobLimits:
    """What one job may use. Memory is RLIMIT_DATA (heap + mmap), not RLIMIT_AS, which breaks CUDA."""

    wall_seconds: float
    open_files: int = 4096
    file_bytes: int = 4 * 1024 * MB
    memory_bytes: int = 0  # 0: three quarters of this machine's memory
    processes: int = 512
    log_bytes: int = 10 * MB
    log_lines: int = 100_000
    output_kill_bytes: int = 200 * MB  # a job printing more than this is stopped
    # NOTE: RLIMIT_FSIZE caps one file; the whole run folder is measured by the executor.
    disk_bytes: int = DEFAULT_DISK_BYTES
    disk_files: int = 1_000_000

    def rlimits(self) -> list[tuple[int, int]]:
        """(resource, limit) pairs for the child; soft and hard limits are the same."""
        memory = self.memory_bytes or int(psutil.virtual_memory().total * 0.75)
        return [
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_FSIZE, self.file_bytes),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_DATA, memory),
            # NOTE: root ignores RLIMIT_NPROC and it counts every process of the uid, so it is
            # only a backstop; the pids cgroup is the real per-job limit.
            (resource.RLIMIT_NPROC, self.processes * 4),
        ]


def limits_for_run(max_minutes: int, *, disk_bytes: int = DEFAULT_DISK_BYTES) -> JobLimits:
    return JobLimits(wall_seconds=max_minutes * 60.0, disk_bytes=disk_bytes)


def apply_rlimits(pairs: list[tuple[int, int]]) -> None:
    """Called in the child between fork and exec: no locks, no allocation-heavy work."""
    for which, limit in pairs:
        resource.setrlimit(which, (limit, limit))
