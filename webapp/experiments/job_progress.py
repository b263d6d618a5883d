"""Progress a running job reports (`engine.track.progress`): its `Run.progress`, replaced by each report.

Two ways in, one rule: the worker reads progress events from the job's events file, and a script
outside Kiln (`engine.track` with KILN_URL and KILN_RUN_ID) posts them to `POST /api/runs/{id}/progress`.
Both check the event with `job_progress_checked` (the counts by `engine.track.progress`, the rule the
job's own call applied) and store it with `job_progress_set`. The event is the job's to write: nothing
in it is trusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine.track.progress import PAIRS, progress_counts
from webapp.experiments.models import Run


def job_progress_checked(event: Mapping[str, Any]) -> dict[str, Any]:
    """A progress event as the record `Run.progress` holds; a TypeError/ValueError names the first thing wrong.

    `time` (seconds since the epoch, when the job reported) is required; an `eta_seconds` that is not a
    finite number >= 0 is dropped (None), as the job leaves it when it has no rate yet.
    """
    counts = progress_counts(**{name: event.get(name) for pair in PAIRS for name in pair})
    at = event.get("time")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValueError(f"progress: time must be seconds since the epoch, got {at!r:.40}")
    eta = event.get("eta_seconds")
    if isinstance(eta, bool) or not isinstance(eta, int | float) or not math.isfinite(eta) or eta < 0:
        eta = None
    return {**counts, "eta_seconds": None if eta is None else float(eta), "at": float(at)}


def job_progress_set(*, run_id: int, progress: dict[str, Any]) -> None:
    """Make a checked record (`job_progress_checked`) the run's progress."""
    Run.objects.filter(id=run_id).update(progress=progress)
