"""How a job ended, in words a user reads on the run page."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

GB = 2**30
# The last stderr line of a process whose allocation was refused (Python, NumPy, C, C++); not CuPy's
# OutOfMemoryError, which is about GPU memory.
_REFUSED_ALLOCATION = re.compile(r"(?<![A-Za-z])(_Array)?MemoryError\b|\[Errno 12\]|Cannot allocate memory|std::bad_alloc")

SUCCEEDED, FAILED, CANCELLED, TAKEN = "succeeded", "failed", "cancelled", "taken"
INTERRUPTED = "interrupted"  # the worker was stopped: the run goes back to the queue


@dataclass(frozen=True)
class Outcome:
    """`state` is succeeded/failed, cancelled (the user did it), taken (the run is no longer ours) or interrupted."""

    state: str
    exit_code: int | None = None
    reason: str = ""


def describe_exit(code: int, *, sandboxed: bool) -> str:
    """"exited with code 2", or "killed by SIGSEGV (segmentation fault)"."""
    signum = -code if code < 0 else code - 128 if sandboxed and 128 < code < 128 + 65 else None
    if signum is None:
        return f"exited with code {code}"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"killed by signal {signum}"
    hint = {"SIGSEGV": " (segmentation fault)", "SIGKILL": " (killed, e.g. out of memory)",
            "SIGXFSZ": " (file size limit)", "SIGABRT": " (aborted)", "SIGBUS": " (bus error)"}.get(name, "")
    return f"killed by {name}{hint}"


def out_of_memory(*, peak_bytes: int | None, limit_bytes: int) -> str:
    """"out of memory: used 1.02 of 1 GB" (the kernel stopped the job at its memory cgroup's limit)."""
    used = f"{peak_bytes / GB:.3g}" if peak_bytes is not None else "all"
    return f"out of memory: used {used} of {limit_bytes / GB:.3g} GB"


def refused_allocation(last_error: str, *, limit_bytes: int) -> str | None:
    """The out-of-memory reason for a job whose allocation RLIMIT_DATA refused, or None if it died otherwise."""
    if not _REFUSED_ALLOCATION.search(last_error):
        return None
    return f"out of memory: asked for more than its {limit_bytes / GB:.3g} GB: {last_error}"
