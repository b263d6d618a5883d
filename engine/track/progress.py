"""What one progress report holds: `step` of `total` and/or `epoch` of `epochs`, checked.

The one rule for a progress record: `track.progress` checks the caller's numbers with it, and the
worker checks each progress event a job wrote with it again (the event file is the job's to write).
"""

from __future__ import annotations

import operator
from typing import Any

PAIRS = (("step", "total"), ("epoch", "epochs"))


def progress_counts(*, step: Any = None, total: Any = None, epoch: Any = None, epochs: Any = None) -> dict[str, int]:
    """{"step", "total"} and/or {"epoch", "epochs"} as ints, or a TypeError/ValueError that names the bad one."""
    given = {"step": step, "total": total, "epoch": epoch, "epochs": epochs}
    counts: dict[str, int] = {}
    for done, whole in PAIRS:
        if given[done] is None and given[whole] is None:
            continue
        if given[done] is None or given[whole] is None:
            missing, present = (done, whole) if given[done] is None else (whole, done)
            raise ValueError(f"progress: {present}= needs {missing}= too ({done} of {whole})")
        count, limit = _count(done, given[done]), _count(whole, given[whole])
        if limit < 1:
            raise ValueError(f"progress: {whole} must be at least 1, got {limit}")
        if count > limit:
            raise ValueError(f"progress: {done} must be at most {whole} ({limit}), got {count}")
        counts[done], counts[whole] = count, limit
    if not counts:
        raise ValueError("progress needs step= and total=, or epoch= and epochs= (or both pairs)")
    return counts


def fraction_done(counts: dict[str, int]) -> float:
    """How far along the run is, 0 to 1: by step of total when reported (the finer one), else by epoch."""
    if "total" in counts:
        return counts["step"] / counts["total"]
    return counts["epoch"] / counts["epochs"]


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"progress: {name} must be an int, got {value!r}")
    try:
        number = operator.index(value)  # int, numpy integers, 0-d integer tensors; not floats
    except TypeError:
        raise TypeError(f"progress: {name} must be an int, got {type(value).__name__} {value!r:.40}") from None
    if number < 0:
        raise ValueError(f"progress: {name} must be >= 0, got {number}")
    return number
