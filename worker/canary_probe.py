"""The canary job: inside the sandbox, try what a hostile job would and print what it got (stdlib only).

    python -m worker.canary_probe SPEC.json RESULT.json TOKEN

SPEC names the worker's pid, the files and folders to read, and the TCP addresses to reach; what
the job got goes to RESULT (in its own run folder), which `worker.canary` judges.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys


def main(spec_path: str, result_path: str, token: str) -> None:
    with open(spec_path) as handle:
        spec = json.load(handle)
    found = {
        "uid": os.getuid(),
        "environ": _foreign_environments(spec["worker_pid"]),
        "processes": _foreign_processes(token),
        "read": [path for path in spec["files"] if _readable(path)],
        "listed": {path: entries for path in spec["folders"] if (entries := _listing(path)) is not None},
        "connected": {name: _connect(host, port) for name, host, port in spec["tcp"]},
        "daemon": _start_daemon(token),
    }
    with open(result_path, "w") as handle:
        json.dump(found, handle)


def _foreign_environments(worker_pid: int) -> dict[str, list[str]]:
    """pid -> names of variables another process has and this one lacks (the worker's pid first)."""
    own = set(os.environ)
    pids = [str(worker_pid)] + [p for p in os.listdir("/proc") if p.isdigit() and p != str(worker_pid)]
    found = {}
    for pid in pids:
        if pid == str(os.getpid()):
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        names = {item.split(b"=", 1)[0].decode(errors="replace") for item in data.split(b"\0") if item}
        if names - own:
            found[pid] = sorted(names - own)[:8]
    return found


def _foreign_processes(token: str) -> list[str]:
    """Visible processes that are not the sandbox's own (bubblewrap's init, this canary and its children)."""
    foreign = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if token in words or (words and os.path.basename(words[0]) == "bwrap"):
            continue
        foreign.append(f"{pid} {' '.join(words)[:60] or '[kernel]'}")
    return foreign


def _readable(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError:
        return False
    return True


def _listing(path: str) -> list[str] | None:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return None


def _connect(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return "connected"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


def _start_daemon(token: str) -> bool:
    """Double fork and setsid: a process meant to outlive the job (the worker checks that it does not)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            os.close(read_end)
            os.set_inheritable(write_end, True)
            daemon = "import os, sys, time; os.write(int(sys.argv[1]), b'x'); os.close(int(sys.argv[1])); time.sleep(60)"
            with contextlib.suppress(OSError):  # an interpreter it cannot start: no daemon
                os.execv(sys.executable, [sys.executable, "-c", daemon, str(write_end), token, "daemon"])  # noqa: S606
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    started = os.read(read_end, 1) == b"x"
    return started


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
