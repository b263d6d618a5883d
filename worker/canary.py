"""Isolation proven, not assumed: at start-up the worker runs a canary job that tries what a hostile job would.

The canary goes through the very path of real jobs (`sandbox_for`, `job_environment`, `JobProcess`
with the job's rlimits; no cgroup, so the PID namespace alone must end its daemon) and tries to
read the worker's environment and the data folder (secret_key, the SQLite database, artifacts, a
probe file), read another run's folder, reach the database, Redis and the web port and a port the
worker opens on loopback, see other processes, run as the worker's uid, and leave a double-forked
daemon behind. Each attempt is a check that holds when the attempt failed.

`isolation_verdict()` is this process's answer (run once, then kept): the worker records it in its
row (`Worker.isolation`, `Worker.isolated`) and the executor refuses code runs when it does not hold,
unless KILN_ALLOW_UNISOLATED_CODE is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from webapp.config import Config
from worker.job_env import job_environment
from worker.limits import JobLimits
from worker.process import JobProcess
from worker.sandbox import JOB_CODE_DIRS, Sandbox, bubblewrap_hint, sandbox_for

CANARY_SECONDS = 20.0
RESULT_FILE = "canary.json"
NOT_ISOLATED = "no isolated worker"
_verdict: dict | None = None
_lock = threading.Lock()


@dataclass(frozen=True)
class Target:
    """A TCP address a job must not reach (host already resolved: no DNS is needed inside)."""

    name: str
    host: str
    port: int


def isolation_verdict(config: Config) -> dict:
    """What the canary found in this process (run at the first call, then kept)."""
    global _verdict
    with _lock:
        if _verdict is None:
            _verdict = run_canary(config)
        return _verdict


def forget_verdict() -> None:
    """Run the canary again at the next call (tests; a worker never changes its sandbox)."""
    global _verdict
    with _lock:
        _verdict = None


def refusal_reason(verdict: dict) -> str:
    """Why a code run is not executed on this worker (its failure reason)."""
    failed = [c["name"] for c in verdict.get("checks", []) if not c["held"]]
    return (f"{NOT_ISOLATED}: this worker's sandbox failed its isolation check ({'; '.join(failed)}); "
            f"{bubblewrap_hint()}")


def run_canary(config: Config) -> dict:
    """Run the canary job once and judge what it got: {"checked_at", "sandbox", "checks", "summary"}."""
    token = f"kiln-canary-{secrets.token_hex(8)}"
    runs = config.data_dir / "runs"
    run_dir, other_run = runs / token / "1", runs / f"{token}-other" / "1"
    probe = config.data_dir / f".{token}"
    sandbox = sandbox_for(0, run_dir, JOB_CODE_DIRS, data_dir=config.data_dir, bwrap=config.bwrap)
    found: dict | None = None
    targets: list[Target] = []
    survivors: list[int] = []
    try:
        _prepare(run_dir, other_run, probe, job_uid=sandbox.uid,
                 other_uid=sandbox_for(1, other_run, (), data_dir=config.data_dir, bwrap=config.bwrap).uid)
        with _bait() as bait:
            targets = [*service_targets(config), bait]
            files = [str(probe), str(other_run / "main.py"), *(str(p) for p in _data_files(config))]
            folders = [str(config.data_dir), str(config.storage_dir), str(runs), str(other_run)]
            spec = {"worker_pid": os.getpid(), "files": files, "folders": folders,
                    "tcp": [[t.name, t.host, t.port] for t in targets]}
            (run_dir / "spec.json").write_text(json.dumps(spec))
            found, failure = _run_probe(sandbox, run_dir, token)
        survivors = _survivors(token)
    except OSError as exc:  # e.g. a data folder it cannot write: nothing is proven
        failure = f"could not prepare it: {exc}"
    finally:
        for folder in (run_dir.parent, other_run.parent):
            shutil.rmtree(folder, ignore_errors=True)
        probe.unlink(missing_ok=True)
    if found is None:
        checks = [_check("the canary job ran", False, failure)]
    else:
        checks = _judge(found, survivors, targets, own=run_dir, config=config)
    failed = [c["name"] for c in checks if not c["held"]]
    summary = (f"isolated: {len(checks)} of {len(checks)} checks held ({sandbox.describe()})" if not failed else
               f"NOT isolated: {len(failed)} of {len(checks)} checks failed: {'; '.join(failed)} "
               f"({sandbox.describe()})")
    return {"checked_at": datetime.now(UTC).isoformat(timespec="seconds"), "sandbox": sandbox.describe(),
            "checks": checks, "summary": summary}


def service_targets(config: Config) -> list[Target]:
    """The platform's own services, from the config: the database (PostgreSQL), Redis and the web port."""
    wanted: list[tuple[str, str, int]] = []
    if config.database_vendor == "postgresql":
        wanted.append(("database", config.database.get("HOST") or "127.0.0.1", int(config.database.get("PORT") or 5432)))
    if config.redis_url:
        parsed = urlparse(config.redis_url)
        wanted.append(("Redis", parsed.hostname or "127.0.0.1", parsed.port or 6379))
    bind_host, _, bind_port = config.bind.rpartition(":")
    if bind_port.isdigit():
        wanted.append(("the web port", bind_host.strip("[]"), int(bind_port)))
    targets = []
    for name, host, port in wanted:
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 -- a listening address: reach it on loopback
            host = "127.0.0.1"
        try:
            address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
        except OSError:
            continue  # unresolvable here (or a Unix socket folder): no TCP address to reach
        targets.append(Target(name, str(address), port))
    return targets


def _data_files(config: Config) -> list[Path]:
    files = [config.data_dir / "secret_key"]
    if config.database_vendor == "sqlite":
        files.append(Path(config.database["NAME"]))
    return [p for p in files if p.exists()]


def _prepare(run_dir: Path, other_run: Path, probe: Path, *, job_uid: int | None, other_uid: int | None) -> None:
    """The canary's folder (as `prepare_workdir` makes one), a decoy of another run's folder, a data-folder file."""
    for folder, uid in ((run_dir, job_uid), (other_run, other_uid)):
        folder.mkdir(parents=True)
        if uid is not None:
            os.chown(folder, uid, uid)
    (other_run / "main.py").write_text("SECRET = 'another run's code'\n")
    if other_uid is not None:
        os.chown(other_run / "main.py", other_uid, other_uid)
    probe.write_text("the data folder is readable\n")
    os.chmod(probe, 0o644)  # like kiln.sqlite3: only the sandbox keeps a job out


@contextlib.contextmanager
def _bait() -> Iterator[Target]:
    """A port the worker listens on, on loopback: a job that reaches it shares the worker's network."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield Target("a port the worker opened", "127.0.0.1", server.getsockname()[1])


def _run_probe(sandbox: Sandbox, run_dir: Path, token: str) -> tuple[dict | None, str]:
    """Start the canary as a job and wait for it (not for its pipes: a surviving daemon holds them open)."""
    env = job_environment(run_id=0, attempt=1, run_dir=run_dir, events=run_dir / "events", config=run_dir / "config",
                          resume=None, python_path=JOB_CODE_DIRS[0].parent, gpu_indices=[],
                          python_bin=Path(sys.executable).parent)
    result = run_dir / RESULT_FILE
    command = [sys.executable, "-u", "-m", "worker.canary_probe", str(run_dir / "spec.json"), str(result), token]
    try:
        job = JobProcess(sandbox.argv(command), cwd=run_dir, env=env,
                         rlimits=JobLimits(wall_seconds=CANARY_SECONDS).rlimits(), cgroup=None)
    except OSError as exc:
        return None, f"could not start: {exc}"
    try:
        code = job.popen.wait(timeout=CANARY_SECONDS)
    except subprocess.TimeoutExpired:
        code = job.stop()
    finally:
        job.reap_stragglers()  # what the executor does after every job
        err = _available(job.popen.stderr)
        for pipe in (job.popen.stdout, job.popen.stderr):
            if pipe is not None:
                pipe.close()
    if code != 0 or not result.exists():
        tail = err.strip().splitlines()[-1:] or ["no output"]
        return None, f"exited with code {code}: {tail[0][:200]}"
    return json.loads(result.read_text()), ""


def _available(pipe: IO[bytes] | None) -> str:
    """What a pipe holds now, without waiting for its end."""
    if pipe is None:
        return ""
    os.set_blocking(pipe.fileno(), False)
    try:
        return (os.read(pipe.fileno(), 65536) or b"").decode(errors="replace")
    except BlockingIOError:
        return ""


def _survivors(token: str, wait: float = 1.0) -> list[int]:
    """Processes of the canary still alive after it ended (given `wait` s to go); killed once counted."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
                with open(f"/proc/{pid}/stat") as handle:
                    zombie = handle.read().rpartition(")")[2].split()[0] == "Z"
            except OSError:
                continue
            if token.encode() in argv and not zombie:
                alive.append(pid)
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return alive


def _judge(found: dict, survivors: list[int], targets: list[Target], *, own: Path, config: Config) -> list[dict]:
    worker_uid = os.getuid()
    own_parts = {p.name for p in (own, *own.parents)}
    listed = {path: [e for e in entries if e not in own_parts] for path, entries in found["listed"].items()}
    leaked = [p for p in found["read"] if not p.startswith(str(own))] + [
        f"{path}/ lists {', '.join(entries[:3])}" for path, entries in listed.items() if entries]
    run_leaks = [p for p in leaked if "-other" in p]  # the decoy run's folder is named <token>-other
    data_leaks = [p for p in leaked if p not in run_leaks]
    checks = [
        _check("runs as a uid other than the worker's", found["uid"] not in (worker_uid, 0),
               f"job uid {found['uid']}, worker uid {worker_uid}"),
        _check("cannot read the worker's environment", not found["environ"],
               "; ".join(f"pid {pid}: {', '.join(names)}" for pid, names in found["environ"].items())
               or "no other process's environment readable"),
        _check("sees only its own processes", not found["processes"],
               f"{len(found['processes'])} others visible, e.g. {found['processes'][0]}" if found["processes"]
               else "its /proc shows only the sandbox's own"),
        _check("cannot read the data folder", not data_leaks,
               "read " + "; ".join(data_leaks[:4]) if data_leaks else f"nothing of {config.data_dir} readable"),
        _check("cannot read another run's folder", not run_leaks,
               "read " + "; ".join(run_leaks[:2]) if run_leaks else "another run's code is out of sight"),
    ]
    for target in targets:
        result = found["connected"].get(target.name, "not tried")
        checks.append(_check(f"cannot reach {target.name}", result != "connected",
                             f"{target.host}:{target.port}: {result}"))
    checks.append(_check("leaves no process behind", found["daemon"] and not survivors,
                         f"a double-forked daemon outlived the job (pid {survivors[0]})" if survivors else
                         "its double-forked daemon ended with it" if found["daemon"] else "the daemon did not start"))
    return checks


def _check(name: str, held: bool, detail: str) -> dict:
    return {"name": name, "held": bool(held), "detail": detail}
