"""Run several Kiln processes in the foreground: restart one that crashes, stop them all together.

Each child gets its own process group (so a whole tree can be signalled) and dies with
the supervisor even if the supervisor itself is killed (Linux parent-death signal). A child
that exits on its own is restarted after a backoff (`RestartPolicy`); one that keeps crashing
fast stops everything with a message naming it. Children's output is relayed line by line,
and the last lines of each are kept to say why it died. Ctrl-C and SIGTERM stop all at once.
"""

from __future__ import annotations

import collections
import ctypes
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("kiln.supervisor")
_PR_SET_PDEATHSIG = 1
_KEPT_LINES = 20  # of each child's output, to report why it died
_REPORTED_LINES = 3
_relay_lock = threading.Lock()


@dataclass(frozen=True)
class Child:
    name: str
    argv: list[str]
    fatal_exit_codes: frozenset[int] = frozenset()  # exits a restart cannot mend: they stop everything at once


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 1.0  # seconds before the first restart; doubled at each crash in a row
    max_delay: float = 30.0
    healthy_after: float = 30.0  # a child that ran this long starts again from `first_delay`
    crash_limit: int = 5  # this many crashes within `crash_window` seconds stop everything
    crash_window: float = 60.0


class CrashHistory:
    """When one child's crashes call for a restart, after how long, and when for giving up (pure)."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._times: collections.deque[float] = collections.deque()
        self._in_a_row = 0

    def crashed(self, *, at: float, ran_for: float) -> float | None:
        """Record a crash at monotonic time `at` after `ran_for` seconds up; the restart delay, or None: give up."""
        p = self.policy
        if ran_for >= p.healthy_after:
            self._in_a_row = 0
        self._times.append(at)
        while self._times[0] <= at - p.crash_window:
            self._times.popleft()
        if len(self._times) >= p.crash_limit:
            return None
        delay = min(p.max_delay, p.first_delay * 2**self._in_a_row)
        self._in_a_row += 1
        return delay


@dataclass(frozen=True)
class Crash:
    """A child that exited on its own: `status` like "exit code 1" or "killed by SIGKILL"."""

    name: str
    status: str
    last_lines: list[str]

    @property
    def error(self) -> str:
        tail = " | ".join(self.last_lines[-_REPORTED_LINES:])
        return f"{self.status}: {tail}" if tail else self.status


@dataclass
class ChildState:
    """What /healthz shows of one child (the supervisor's state file holds one per child)."""

    pid: int | None = None
    restarts: int = 0
    last_error: str = ""
    last_crash_at: str | None = None


@dataclass
class _Running:
    child: Child
    proc: subprocess.Popen
    started: float
    lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=_KEPT_LINES))
    relay: threading.Thread | None = None

    def crash(self, code: int) -> Crash:
        if code < 0:  # killed from outside: its last lines are ordinary work, not why it ended
            return Crash(self.child.name, describe_exit(code), [])
        if self.relay is not None:
            self.relay.join(timeout=0.5)  # the last lines it wrote before dying
        return Crash(self.child.name, describe_exit(code), [line for line in self.lines if line.strip()])


def supervise(children: list[Child], *, policy: RestartPolicy | None = None, stop_timeout: float = 10.0,
              state_file: Path | None = None, on_crash: Callable[[Crash], None] | None = None) -> int:
    """Start every child and keep them running until Ctrl-C or SIGTERM (exit 0) or a child gives up (exit 1).

    `state_file` (JSON, written atomically) records each child's pid, restarts and last error for
    /healthz; `on_crash` is called after each crash that is followed by a restart."""
    policy = policy or RestartPolicy()
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    running: dict[str, _Running] = {}
    restart_at: dict[str, float] = {}
    history = {child.name: CrashHistory(policy) for child in children}
    state = {child.name: ChildState() for child in children}
    exit_code = 0
    try:
        for child in children:
            running[child.name] = _start(child, state, state_file)
        while not stopping:
            now = time.monotonic()
            for name, child_run in list(running.items()):
                code = child_run.proc.poll()
                if code is None:
                    continue
                del running[name]
                _signal_group(child_run.proc, signal.SIGKILL)  # whatever it left in its process group
                crash = child_run.crash(code)
                if code in child_run.child.fatal_exit_codes:
                    log.error("%s cannot run (%s); stopping Kiln", name, crash.error)
                    exit_code, stopping = 1, True
                    break
                delay = history[name].crashed(at=now, ran_for=now - child_run.started)
                if delay is None:
                    log.error("%s crashed %d times within %.0f s; stopping Kiln. Its last error: %s",
                              name, policy.crash_limit, policy.crash_window, crash.error)
                    exit_code, stopping = 1, True
                    break
                state[name].restarts += 1
                state[name].last_error, state[name].last_crash_at = crash.error, _now_iso()
                log.error("%s exited unexpectedly (%s); restarting it in %g s", name, crash.error, delay)
                _write_state(state_file, state)
                if on_crash is not None:
                    try:
                        on_crash(crash)
                    except Exception:
                        log.exception("could not record the crash of %s", name)
                restart_at[name] = now + delay
            for name, at in list(restart_at.items()):
                if not stopping and now >= at:
                    del restart_at[name]
                    running[name] = _start(next(c for c in children if c.name == name), state, state_file)
            time.sleep(0.2)
    finally:
        _stop_all({name: r.proc for name, r in running.items()}, stop_timeout)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if state_file is not None:
            state_file.unlink(missing_ok=True)
    return exit_code


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def state_path(data_dir: Path) -> Path:
    """Where `kiln run` keeps its children's state for /healthz."""
    return data_dir / "supervisor.json"


def read_state(path: Path) -> dict[str, Any] | None:
    """What a running supervisor wrote to `path` (None when there is none, or its supervisor is gone)."""
    try:
        data = json.loads(path.read_text())
        os.kill(int(data["supervisor_pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    children = data.get("children")
    return children if isinstance(children, dict) else None


def _start(child: Child, state: dict[str, ChildState], state_file: Path | None) -> _Running:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # output is a pipe now: line by line, not in blocks
    proc = subprocess.Popen(child.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: S603
                            stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
    running = _Running(child, proc, time.monotonic())
    assert proc.stdout is not None
    running.relay = threading.Thread(target=_relay, args=(proc.stdout, running.lines), name=f"relay-{child.name}",
                                     daemon=True)
    running.relay.start()
    state[child.name].pid = proc.pid
    _write_state(state_file, state)
    log.info("started %s (pid %d)", child.name, proc.pid)
    return running


def _relay(stream: IO[bytes], lines: collections.deque[str]) -> None:
    """Copy a child's output to ours, keeping its last lines."""
    out = sys.stdout.buffer
    for raw in iter(stream.readline, b""):
        lines.append(raw.decode("utf-8", "replace").rstrip())
        with _relay_lock:
            try:
                out.write(raw)
                out.flush()
            except (OSError, ValueError):  # our output is gone (closed pipe): keep draining the child's
                pass
    stream.close()


def _write_state(path: Path | None, children: dict[str, ChildState]) -> None:
    if path is None:
        return
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        body = {"supervisor_pid": os.getpid(), "children": {name: asdict(c) for name, c in children.items()}}
        temp.write_text(json.dumps(body))
        os.replace(temp, path)
    except OSError as exc:
        log.warning("could not write %s: %s", path, exc)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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
