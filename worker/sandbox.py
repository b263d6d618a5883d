"""How a job is wrapped: bubblewrap when installed, an unprivileged uid when we are root.

    bwrap --unshare-net --unshare-pid --die-with-parent <read-only system binds> --bind RUN RUN
          --cap-add SETUID,SETGID -- setpriv --reuid U --regid U --clear-groups -- python -u main.py

Inside bubblewrap the job sees the system folders, this installation's interpreter (the venv and
its resolved base interpreter) and code read-only, and its own run folder writable; nothing else of
the data folder (a tmpfs hides it should it lie under a bound folder). Without bubblewrap the job
gets only its process group, rlimits, a pids cgroup and (when the interpreter is readable by it) the
unprivileged uid: it is NOT isolated, the start-up canary (`worker.canary`) says so and code runs
are refused there unless KILN_ALLOW_UNISOLATED_CODE is set.

Job uids: UID_BASE + offset * UID_SPAN + run_id % UID_SPAN, where `offset` is a random number
kept in KILN_DATA_DIR/uid_offset, so two installations on one host (almost surely, 1 in
UID_OFFSETS) never share a uid, and no two concurrent jobs of one installation do.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# What a job may import from this installation: the engine, and the built-in recipes and the canary
# (which import only the engine and the standard library; `worker/__init__.py` is a docstring).
JOB_CODE_DIRS = (Path(__file__).resolve().parent.parent / "engine", Path(__file__).resolve().parent)
UID_BASE = 200_000
UID_SPAN = 100_000
UID_OFFSETS = 40_000  # per-installation blocks of UID_SPAN uids: the largest uid stays below 2**32 - 1
UID_OFFSET_FILE = "uid_offset"
# A job's network: none but loopback (every one-worker run, its ranks included), a namespace joined only
# to the other nodes of its own multi-node run (`worker.gang_network`), or the host's (operator opt-in).
NETWORK_NONE, NETWORK_GANG, NETWORK_HOST = "none", "gang", "host"
BWRAP_NONE = "none"  # KILN_BWRAP=none: never use bubblewrap (jobs are then not isolated)
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
    hidden: tuple[Path, ...] = ()  # folders (the data folder) covered by an empty tmpfs if a bind exposes them
    network: str = NETWORK_NONE
    netns: str = ""  # NETWORK_GANG: the named network namespace (`ip netns`) the job starts in

    def argv(self, command: list[str]) -> list[str]:
        inner = command
        if self.uid is not None and self.setpriv:
            drop = [self.setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
            if self.bwrap is None:
                drop.append("--pdeathsig=SIGKILL")  # setuid clears the parent-death signal; set it again
            inner = [*drop, "--", *command]
        if self.bwrap is None:
            return inner
        wrapped = [self.bwrap, *self._bwrap_args(), "--", *inner]
        if self.network == NETWORK_GANG:
            return [shutil.which("ip") or "ip", "netns", "exec", self.netns, *wrapped]
        return wrapped

    def describe(self) -> str:
        user = f"uid {self.uid}" if self.uid is not None else f"uid {os.geteuid()}"
        if self.bwrap:
            network = {NETWORK_NONE: "no network", NETWORK_GANG: "network only to the run's other nodes",
                       NETWORK_HOST: "the HOST's network (KILN_DISTRIBUTED_HOST_NETWORK)"}[self.network]
            return f"sandbox: bubblewrap ({network}, own PID namespace), {user}"
        return (f"sandbox: NOT isolated, plain subprocess (no working bubblewrap: the job shares the network, "
                f"the processes and the files of this machine), {user}")

    def _bwrap_args(self) -> list[str]:
        args = ["--unshare-net"] if self.network == NETWORK_NONE else []
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                "--new-session"]
        made: set[str] = set()
        for system in _SYSTEM_DIRS:
            if os.path.exists(system):
                args += ["--ro-bind", system, system]
                made.add(system)
        if bwrap_sizes_tmpfs(self.bwrap):  # sticky and world-writable like a real /tmp, and capped
            args += ["--perms", "01777", "--size", str(JOB_TMP_BYTES)]
        args += ["--tmpfs", _JOB_TMP, "--proc", "/proc", "--dev", "/dev"]
        made |= {_JOB_TMP, "/proc", "/dev"}
        if bwrap_sizes_tmpfs(self.bwrap):  # POSIX shared memory, private to the job: MPI's ranks of one node use it
            args += ["--perms", "01777", "--size", str(JOB_TMP_BYTES), "--tmpfs", "/dev/shm"]  # noqa: S108 - a fresh tmpfs
        if self.network != NETWORK_NONE:  # MPI's TCP transport lists the network devices (the namespace's own)
            args += ["--ro-bind", "/sys", "/sys"]
        for path in self.read_only:
            args += [*_parents(path, made), "--ro-bind", str(path), str(path)]
        bound = [Path(d) for d in _SYSTEM_DIRS if d in made] + list(self.read_only)
        covered = tuple(p for p in self.hidden if any(p == root or root in p.parents for root in bound))
        for path in covered:
            args += ["--tmpfs", str(path)]
            made.add(str(path))
        args += [*_parents(self.run_dir, made, covered), "--bind", str(self.run_dir), str(self.run_dir)]
        args += ["--chdir", str(self.run_dir)]
        if self.uid is not None:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        return args


def _parents(path: Path, made: set[str], tmpfs: tuple[Path, ...] = ()) -> list[str]:
    """Create `path`'s parent folders world-traversable (bwrap makes them 0700 otherwise)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        name = str(parent)
        in_system = any(name.startswith(m + "/") for m in made if m in _SYSTEM_DIRS)
        if name == "/" or name in made or (in_system and not any(t in parent.parents for t in tmpfs)):
            continue
        args += ["--perms", "0755", "--dir", name]
        made.add(name)
    return args


def sandbox_for(run_id: int, run_dir: Path, code_dirs: tuple[Path, ...], *, data_dir: Path,
                bwrap: str = "") -> Sandbox:
    """The strongest sandbox this machine supports for one run; `code_dirs` are bound read-only.

    `bwrap` is the KILN_BWRAP setting ("" finds bubblewrap on PATH, "none" disables it)."""
    wrapper = bwrap_path(bwrap)
    uid = None
    if os.geteuid() == 0 and setpriv_usable(bwrap, data_dir.resolve()):
        uid = UID_BASE + installation_uid_offset(data_dir) * UID_SPAN + run_id % UID_SPAN
    read_only = tuple(sorted(p for p in interpreter_dirs() | set(code_dirs) if p.exists() and not _under_system(p)))
    return Sandbox(bwrap=wrapper, setpriv=shutil.which("setpriv"), uid=uid, run_dir=run_dir, read_only=read_only,
                   hidden=(data_dir.resolve(),))


def interpreter_dirs() -> set[Path]:
    """The venv and the base interpreter it links to, as named and resolved, so `sys.executable` runs inside."""
    executable = Path(sys.executable)
    return {Path(sys.prefix), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
            executable.resolve().parent.parent}


def installation_uid_offset(data_dir: Path) -> int:
    """This installation's block of job uids: a random number kept in the data folder (created once, atomically)."""
    path = data_dir / UID_OFFSET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{UID_OFFSET_FILE}.{os.getpid()}"
        tmp.write_text(f"{secrets.randbelow(UID_OFFSETS)}\n")
        try:
            os.link(tmp, path)  # the first of several processes starting at once wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    text = path.read_text().strip()
    if not text.isdigit() or int(text) >= UID_OFFSETS:
        raise ValueError(f"{path} must hold a whole number below {UID_OFFSETS}, got {text!r}")
    return int(text)


def _under_system(path: Path) -> bool:
    return any(str(path) == d or str(path).startswith(d + "/") for d in _SYSTEM_DIRS)


@functools.cache
def bwrap_path(setting: str = "") -> str | None:
    """bubblewrap, if installed (or named by `setting`, KILN_BWRAP) and able to create namespaces here."""
    if setting == BWRAP_NONE:
        return None
    path = setting or shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(  # noqa: S603 -- fixed argv
        [path, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--", "true"],
        capture_output=True, timeout=20, check=False,
    )
    return path if probe.returncode == 0 else None


@functools.cache
def bwrap_sizes_tmpfs(path: str | None = None) -> bool:
    """Whether this bubblewrap can size a tmpfs and set its mode (`--size`, `--perms`: bubblewrap 0.7 and later)."""
    path = path or bwrap_path()
    if path is None:
        return False
    usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
    return "--size" in usage.stdout + usage.stderr


@functools.cache
def setpriv_usable(bwrap: str = "", data_dir: Path | None = None) -> bool:
    """Whether an unprivileged uid can start this interpreter and reach the run folders under `data_dir`
    (outside bwrap both must be traversable by any uid)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return False
    if bwrap_path(bwrap):
        return True  # bwrap re-creates the interpreter's and the run folder's parents traversable
    reach = f"import os; os.stat({str(data_dir)!r})" if data_dir else ""
    probe = subprocess.run(  # noqa: S603 -- fixed argv
        [setpriv, f"--reuid={UID_BASE}", f"--regid={UID_BASE}", "--clear-groups", "--",
         sys.executable, "-c", f"import numpy; {reach}"],
        capture_output=True, timeout=60, check=False, cwd="/",
    )
    return probe.returncode == 0


def bubblewrap_hint() -> str:
    """One line on how to get isolated code runs where bubblewrap does not work."""
    return ("code runs need bubblewrap to be isolated: apt install bubblewrap (in Docker: see the worker "
            "service in docker-compose.yml), or set KILN_ALLOW_UNISOLATED_CODE=1 on a single-user machine")
