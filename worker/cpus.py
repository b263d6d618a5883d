"""Which of this worker's CPUs each running job may use: `resources.cpus`, enforced by CPU affinity.

Jobs run in threads of one worker process, so one `CpuGrants` (`CPU_GRANTS`) hands out CPUs
to all of them: each job gets the first CPUs no other job holds. Only when the operator
offers more slots than the host has CPUs (KILN_WORKER_CPUS) do jobs share, least-held first.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable


def host_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on; () where the platform cannot pin (then jobs are not pinned)."""
    if not hasattr(os, "sched_getaffinity"):
        return ()
    return tuple(sorted(os.sched_getaffinity(0)))


class CpuGrants:
    """CPUs granted to running jobs, by job key."""

    def __init__(self, cpus: Iterable[int] | None = None):
        self.cpus = host_cpus() if cpus is None else tuple(sorted(cpus))
        self._granted: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def grant(self, key: str, count: int) -> tuple[int, ...]:
        """`count` CPUs for job `key` (all of them when the host has fewer); () when pinning is impossible."""
        with self._lock:
            held = Counter(cpu for cpus in self._granted.values() for cpu in cpus)
            ranked = sorted(self.cpus, key=lambda cpu: (held[cpu], cpu))
            chosen = tuple(sorted(ranked[: max(1, count)]))
            if chosen:
                self._granted[key] = chosen
            return chosen

    def release(self, key: str) -> None:
        with self._lock:
            self._granted.pop(key, None)

    def granted(self) -> dict[str, tuple[int, ...]]:
        """What each running job holds now (a copy)."""
        with self._lock:
            return dict(self._granted)


CPU_GRANTS = CpuGrants()
