"""Run several Kiln processes in the foreground and stop them all together.

Each child gets its own process group (so a whole tree can be signalled) and dies with
the supervisor even if the supervisor itself is killed (Linux parent-death signal).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass

log = logging.getLogger("kiln.supervisor")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Child:
    name: str
    argv: list[str]


def supervise(children: list[Child], *, stop_timeout: float = 10.0) -> int:
    """Start every child; on Ctrl-C, SIGTERM or any child exiting, stop them all. Returns an exit code."""
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen] = {}
    exit_code = 0
    try:
        for child in children:
            procs[child.name] = subprocess.Popen(child.argv, preexec_fn=_child_setup)  # noqa: S603
            log.info("started %s (pid %d)", child.name, procs[child.name].pid)
        while not stopping:
            for name, proc in procs.items():
                code = proc.poll()
                if code is not None:
                    log.error("%s exited with code %s; stopping the others", name, code)
                    exit_code, stopping = (code or 1), True
                    break
            time.sleep(0.2)
    finally:
        _stop_all(procs, stop_timeout)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return exit_code


def _child_setup() -> None:
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_all(procs: dict[str, subprocess.Popen], timeout: float) -> None:
    for proc in procs.values():
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", name, timeout)
        _signal_group(proc, signal.SIGKILL)  # whatever is left of its process group
        proc.wait()
    log.info("all Kiln processes stopped")


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
