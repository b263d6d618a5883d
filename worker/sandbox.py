"""How a job is wrapped: bubblewrap when installed, an unprivileged uid when we are root.

    bwrap --unshare-net --unshare-pid --die-with-parent <read-only system binds> --bind RUN RUN
          --cap-add SETUID,SETGID -- setpriv --reuid U --regid U --clear-groups -- python -u main.py

Without bubblewrap the job still gets its own process group, rlimits, a pids cgroup and
(when the interpreter is readable by it) the unprivileged uid, and the run log says so.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UID_BASE = 200_000  # jobs run as uid UID_BASE + run_id % UID_SPAN: no two concurrent jobs share one
UID_SPAN = 100_000
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc")
_JOB_TMP = "/tmp"  # noqa: S108 -- a fresh tmpfs inside the sandbox, private to the job
JOB_TMP_BYTES = 1 << 30  # that tmpfs lives in memory: a job filling it gets "no space left", not the host's RAM


@dataclass(frozen=True)
class Sandbox:
    """The wrapper for one job: `argv(command)` and a description for the run log."""

    bwrap: str | None
    setpriv: str | None
    uid: int | None
    run_dir: Path
    read_only: tuple[Path, ...]

    def argv(self, command: list[str]) -> list[str]:
        inner = command
        if self.uid is not None and self.setpriv:
            drop = [self.setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
            if self.bwrap is None:
                drop.append("--pdeathsig=SIGKILL")  # setuid clears the parent-death signal; set it again
            inner = [*drop, "--", *command]
        if self.bwrap is None:
            return inner
        return [self.bwrap, *self._bwrap_args(), "--", *inner]

    def describe(self) -> str:
        user = f"uid {self.uid}" if self.uid is not None else f"uid {os.geteuid()}"
        if self.bwrap:
            return f"sandbox: bubblewrap (no network, own PID namespace), {user}"
        return f"sandbox: plain subprocess (bubblewrap not installed: the job shares the network), {user}"

    def _bwrap_args(self) -> list[str]:
        args = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                "--new-session"]
        made: set[str] = set()
        for system in _SYSTEM_DIRS:
            if os.path.exists(system):
                args += ["--ro-bind", system, system]
                made.add(system)
        if bwrap_sizes_tmpfs():  # sticky and world-writable like a real /tmp, and capped
            args += ["--perms", "01777", "--size", str(JOB_TMP_BYTES)]
        args += ["--tmpfs", _JOB_TMP, "--proc", "/proc", "--dev", "/dev"]
        made |= {_JOB_TMP, "/proc", "/dev"}
        for path in self.read_only:
            args += [*_parents(path, made), "--ro-bind", str(path), str(path)]
        args += [*_parents(self.run_dir, made), "--bind", str(self.run_dir), str(self.run_dir)]
        args += ["--chdir", str(self.run_dir)]
        if self.uid is not None:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        return args


def _parents(path: Path, made: set[str]) -> list[str]:
    """Create `path`'s parent folders world-traversable (bwrap makes them 0700 otherwise)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        name = str(parent)
        if name == "/" or name in made or any(name.startswith(m + "/") for m in made if m in _SYSTEM_DIRS):
            continue
        args += ["--perms", "0755", "--dir", name]
        made.add(name)
    return args


def sandbox_for(run_id: int, run_dir: Path, code_dirs: tuple[Path, ...]) -> Sandbox:
    """The strongest sandbox this machine supports for one run; `code_dirs` are bound read-only."""
    bwrap = bwrap_path()
    uid = UID_BASE + run_id % UID_SPAN if os.geteuid() == 0 and setpriv_usable() else None
    prefixes = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    read_only = tuple(sorted(p for p in prefixes | set(code_dirs) if p.exists() and not _under_system(p)))
    return Sandbox(bwrap=bwrap, setpriv=shutil.which("setpriv"), uid=uid, run_dir=run_dir, read_only=read_only)


def _under_system(path: Path) -> bool:
    return any(str(path) == d or str(path).startswith(d + "/") for d in _SYSTEM_DIRS)


@functools.cache
def bwrap_path() -> str | None:
    """bubblewrap, if installed and able to create namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(  # noqa: S603 -- fixed argv
        [path, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--", "true"],
        capture_output=True, timeout=20, check=False,
    )
    return path if probe.returncode == 0 else None


@functools.cache
def bwrap_sizes_tmpfs() -> bool:
    """Whether this bubblewrap can size a tmpfs and set its mode (`--size`, `--perms`: bubblewrap 0.7 and later)."""
    path = bwrap_path()
    if path is None:
        return False
    usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
    return "--size" in usage.stdout + usage.stderr


@functools.cache
def setpriv_usable() -> bool:
    """Whether an unprivileged uid can start this interpreter (outside bwrap it must be readable)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return False
    if bwrap_path():
        return True  # bwrap re-creates the interpreter's parent folders traversable
    probe = subprocess.run(  # noqa: S603 -- fixed argv
        [setpriv, f"--reuid={UID_BASE}", f"--regid={UID_BASE}", "--clear-groups", "--",
         sys.executable, "-c", "import numpy"],
        capture_output=True, timeout=60, check=False, cwd="/",
    )
    return probe.returncode == 0
