"""Resource limits for one job: applied in the child with setrlimit, plus its cgroups (`worker.cgroup`)."""

from __future__ import annotations

import resource
from dataclasses import dataclass

MB = 1024 * 1024
GB = 1024 * MB  # memory sizes: resources.memory_gb and KILN_RUN_MEMORY_GB count 2**30 bytes
DEFAULT_MEMORY_GB = 4.0
DEFAULT_DISK_BYTES = 10 * 10**9


@dataclass(frozen=True)
class JobLimits:
    """What one job may use. Memory: a memory cgroup, else RLIMIT_DATA (heap + mmap; RLIMIT_AS breaks CUDA)."""

    wall_seconds: float
    open_files: int = 4096
    file_bytes: int = 4 * 1024 * MB
    memory_bytes: int = int(DEFAULT_MEMORY_GB * GB)
    processes: int = 512
    log_bytes: int = 10 * MB
    log_lines: int = 100_000
    output_kill_bytes: int = 200 * MB  # a job printing more than this is stopped
    # NOTE: RLIMIT_FSIZE caps one file; the whole run folder is measured by the executor.
    disk_bytes: int = DEFAULT_DISK_BYTES
    disk_files: int = 1_000_000

    @property
    def memory_gb(self) -> float:
        return self.memory_bytes / GB

    def rlimits(self, *, memory_cgroup: bool = False) -> list[tuple[int, int]]:
        """(resource, limit) pairs for the child; soft and hard limits are the same.

        With a memory cgroup RLIMIT_DATA is left alone: it counts reserved address space, not memory
        used, and would refuse allocations the cgroup allows.
        """
        pairs = [
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_FSIZE, self.file_bytes),
            (resource.RLIMIT_CORE, 0),
            # NOTE: root ignores RLIMIT_NPROC and it counts every process of the uid, so it is
            # only a backstop; the pids cgroup is the real per-job limit.
            (resource.RLIMIT_NPROC, self.processes * 4),
        ]
        if not memory_cgroup:
            pairs.append((resource.RLIMIT_DATA, self.memory_bytes))
        return pairs


def limits_for_run(max_minutes: int, *, disk_bytes: int = DEFAULT_DISK_BYTES,
                   memory_gb: float = DEFAULT_MEMORY_GB) -> JobLimits:
    return JobLimits(wall_seconds=max_minutes * 60.0, disk_bytes=disk_bytes, memory_bytes=int(memory_gb * GB))


def apply_rlimits(pairs: list[tuple[int, int]]) -> None:
    """Called in the child between fork and exec: no locks, no allocation-heavy work."""
    for which, limit in pairs:
        resource.setrlimit(which, (limit, limit))
