"""Start a job in its own session/process group (and its cgroups), and stop all of it."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from worker.cgroup import JobCgroup
from worker.limits import apply_rlimits

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork: the child only calls it


class JobProcess:
    """One job's process tree. `stop()` ends it all: SIGTERM, then SIGKILL after `grace` seconds."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str], rlimits: list[tuple[int, int]],
                 cgroup: JobCgroup | None, cpus: tuple[int, ...] = ()):
        self.cgroup = cgroup
        procs_fds = cgroup.procs_fds() if cgroup else []

        def child_setup() -> None:  # runs between fork and exec: only syscalls
            for fd in procs_fds:
                os.write(fd, str(os.getpid()).encode())
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            apply_rlimits(rlimits)
            if cpus:  # the job and everything it starts run only on its granted CPUs
                os.sched_setaffinity(0, cpus)

        try:
            self.popen = subprocess.Popen(  # noqa: S603 -- argv built by worker.sandbox
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, close_fds=True, preexec_fn=child_setup,
            )
        finally:
            for fd in procs_fds:
                os.close(fd)
        self.pid = self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def pids(self) -> list[int]:
        """Every process of the job that we can name (the cgroup sees through setsid escapes)."""
        from worker.sysmetrics import process_tree

        if self.cgroup is not None:
            return self.cgroup.pids()
        return process_tree(self.pid)

    def signal_all(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)  # the group outlives its leader, so this is safe after exit
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is not None:
            self.cgroup.signal_all(signum)

    def stop(self, grace: float = 2.0) -> int:
        """End the whole tree within `grace` + ~1 s; returns the main process's exit status."""
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.signal_all(signal.SIGKILL)
        return self.popen.wait(timeout=5)

    def reap_stragglers(self) -> None:
        """After the main process exited: nothing the job started may outlive it."""
        self.signal_all(signal.SIGKILL)
        if self.cgroup is not None:
            deadline = time.monotonic() + 2.0
            while self.cgroup.pids() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.cgroup.remove()
