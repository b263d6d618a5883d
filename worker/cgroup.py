"""The cgroups of one job (v1 or v2): its process and memory limits, and every process in it.

A job that double-forks and calls setsid leaves its process group but never its cgroup, so
killing the cgroup's members is what reliably ends a run without bubblewrap. Past its memory
limit the kernel OOM-kills the job's own processes, never the worker's or another job's.
cgroup v1 has one folder per controller (`pids/<name>`, `memory/<name>`); v2 one for both.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)
V1_PIDS = Path("/sys/fs/cgroup/pids")
V1_MEMORY = Path("/sys/fs/cgroup/memory")
V2_ROOT = Path("/sys/fs/cgroup")


class JobCgroup:
    """One job's cgroup folders; `create` returns None where none can exist (then rlimits are all there is)."""

    def __init__(self, folders: tuple[Path, ...], *, pids_dir: Path | None = None, memory_dir: Path | None = None,
                 unified: bool = False):
        self.folders = folders  # each one the job joins: one in v2, one per controller in v1
        self.pids_dir, self.memory_dir, self.unified = pids_dir, memory_dir, unified

    @property
    def limits_processes(self) -> bool:
        return self.pids_dir is not None

    @property
    def limits_memory(self) -> bool:
        return self.memory_dir is not None

    @classmethod
    def create(cls, name: str, *, max_pids: int, memory_bytes: int) -> JobCgroup | None:
        if (V2_ROOT / "cgroup.controllers").exists():
            return cls._create_v2(name, max_pids, memory_bytes)
        pids_dir = _make(V1_PIDS, name, [("pids.max", str(max_pids))])
        # NOTE: memsw (memory + swap) may not be set below the memory limit, so it comes second.
        memory_dir = _make(V1_MEMORY, name, [("memory.limit_in_bytes", str(memory_bytes))],
                           optional=[("memory.memsw.limit_in_bytes", str(memory_bytes))])
        folders = tuple(p for p in (pids_dir, memory_dir) if p is not None)
        return cls(folders, pids_dir=pids_dir, memory_dir=memory_dir) if folders else None

    @classmethod
    def _create_v2(cls, name: str, max_pids: int, memory_bytes: int) -> JobCgroup | None:
        available = _words(V2_ROOT / "cgroup.controllers")
        for controller in ("pids", "memory"):  # children get a controller only once the parent hands it down
            if controller in available and controller not in _words(V2_ROOT / "cgroup.subtree_control"):
                try:
                    (V2_ROOT / "cgroup.subtree_control").write_text(f"+{controller}")
                except OSError as exc:  # e.g. a container's cgroup that holds processes itself
                    log.warning("cgroup v2: cannot enable the %s controller (%s)", controller, exc)
        enabled = _words(V2_ROOT / "cgroup.subtree_control")
        writes, optional = [], []
        if "pids" in enabled:
            writes.append(("pids.max", str(max_pids)))
        if "memory" in enabled:
            writes.append(("memory.max", str(memory_bytes)))
            optional += [("memory.swap.max", "0"), ("memory.oom.group", "1")]  # no swapping past it; OOM ends the job
        path = _make(V2_ROOT, name, writes, optional=optional)
        if path is None:
            return None
        return cls((path,), pids_dir=path if "pids" in enabled else None,
                   memory_dir=path if "memory" in enabled else None, unified=True)

    def procs_fds(self) -> list[int]:
        """fds on each folder's cgroup.procs, opened before fork so the child only has to os.write its pid."""
        return [os.open(folder / "cgroup.procs", os.O_WRONLY) for folder in self.folders]

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.folders[0] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def hit_process_limit(self) -> bool:
        """Whether a fork was refused because the job reached pids.max."""
        return self.pids_dir is not None and _counter(self.pids_dir / "pids.events", "max") > 0

    def out_of_memory(self) -> bool:
        """Whether the kernel OOM-killed one of the job's processes at its memory limit."""
        if self.memory_dir is None:
            return False
        if self.unified:
            return _counter(self.memory_dir / "memory.events", "oom_kill") > 0
        return _counter(self.memory_dir / "memory.oom_control", "oom_kill") > 0

    def memory_peak(self) -> int | None:
        """The most memory the job used at once, in bytes (None where the kernel does not say)."""
        if self.memory_dir is None:
            return None
        name = "memory.peak" if self.unified else "memory.max_usage_in_bytes"
        try:
            return int((self.memory_dir / name).read_text().strip())
        except (OSError, ValueError):
            return None

    def signal_all(self, signum: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def remove(self) -> bool:
        """Kill anything left and delete the folders; False if one still had processes."""
        self.signal_all(signal.SIGKILL)
        removed = True
        for folder in self.folders:
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                removed = False
        return removed


def remove_stale(prefix: str) -> int:
    """Kill and delete the job cgroups named `prefix*` (every controller) left by an earlier process."""
    removed: set[str] = set()
    for root in (V1_PIDS, V1_MEMORY, V2_ROOT):
        if not (root / "cgroup.procs").exists():
            continue
        for path in root.glob(f"{prefix}*"):
            if path.is_dir() and JobCgroup((path,)).remove():
                removed.add(path.name)
    return len(removed)


def _make(root: Path, name: str, writes: list[tuple[str, str]], *,
          optional: list[tuple[str, str]] | None = None) -> Path | None:
    """`root/name` with `writes` done (and `optional` tried), or None where the hierarchy is absent or refuses."""
    if not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
        return None
    path = root / name
    try:
        path.mkdir(exist_ok=True)
        for file, value in writes:
            (path / file).write_text(value)
    except OSError as exc:
        log.warning("no %s cgroup for %s (%s)", root.name, name, exc)
        try:
            path.rmdir()
        except OSError:
            pass
        return None
    for file, value in optional or []:
        try:
            (path / file).write_text(value)
        except OSError:  # a kernel without swap accounting, or an older one
            pass
    return path


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def _counter(path: Path, key: str) -> int:
    """The value of `key` in a flat-keyed cgroup file ("max 3\\noom_kill 1"), 0 if absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, count = line.partition(" ")
            if name == key:
                return int(count)
    except (OSError, ValueError):
        pass
    return 0
