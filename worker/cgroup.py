"""A pids cgroup (cgroup v1 or v2) per job: caps its process count and finds every process in it.

A job that double-forks and calls setsid leaves its process group but never its cgroup, so
killing the cgroup's members is what reliably ends a run without bubblewrap.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)
V1_ROOT = Path("/sys/fs/cgroup/pids")
V2_ROOT = Path("/sys/fs/cgroup")


class PidsCgroup:
    """`/sys/fs/cgroup/pids/<name>` with pids.max set; `create` returns None where it cannot exist."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, name: str, max_pids: int) -> PidsCgroup | None:
        root = V1_ROOT if (V1_ROOT / "cgroup.procs").exists() else V2_ROOT
        if not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
            return None
        path = root / name
        try:
            path.mkdir(exist_ok=True)
            (path / "pids.max").write_text(str(max_pids))
        except OSError as exc:
            log.warning("no pids cgroup for %s (%s); relying on rlimits", name, exc)
            return None
        return cls(path)

    def procs_fd(self) -> int:
        """An fd on cgroup.procs, opened before fork so the child only has to os.write its pid."""
        return os.open(self.path / "cgroup.procs", os.O_WRONLY)

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def hit_limit(self) -> bool:
        """Whether a fork was refused because the job reached pids.max."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                name, _, count = line.partition(" ")
                if name == "max" and int(count) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def signal_all(self, signum: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def remove(self) -> bool:
        """Kill anything left and delete the cgroup; False if it still had processes."""
        self.signal_all(signal.SIGKILL)
        try:
            self.path.rmdir()
            return True
        except OSError:
            return False


def remove_stale(prefix: str) -> int:
    """Kill and delete cgroups named `prefix*` left by an earlier process of this worker."""
    removed = 0
    for root in (V1_ROOT, V2_ROOT):
        if not root.is_dir():
            continue
        for path in root.glob(f"{prefix}*"):
            if path.is_dir() and PidsCgroup(path).remove():
                removed += 1
    return removed
