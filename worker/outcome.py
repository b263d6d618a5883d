"""How a job ended, in words a user reads on the run page."""

from __future__ import annotations

import signal
from dataclasses import dataclass

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
