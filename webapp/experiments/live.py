"""Reads behind the run page's live view: the run's status, new metric points, new log lines.

Every read here is bounded: a series longer than `MAX_POINTS` comes back downsampled (the
minimum and maximum of each bucket, so spikes survive), and a log read returns at most
`MAX_LOG_LINES` lines. The page then asks only for what is newer than what it has.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import Q
from django.utils import timezone

from engine.track.progress import PAIRS as PROGRESS_PAIRS
from webapp.experiments.downsample import minmax_indices
from webapp.experiments.models import FINAL_STATES, Run, RunState
from webapp.experiments.results import is_system

MAX_POINTS = 2000
MAX_LOG_LINES = 500


def run_status(run: Run, *, with_events: bool = False) -> dict[str, Any]:
    """What the page header shows and updates in place; `with_events` adds the state timeline."""
    status: dict[str, Any] = {
        "state": run.state,
        "label": RunState(run.state).label,
        "final": run.state in FINAL_STATES,
        "pending_reason": run.pending_reason,
        "attempt": run.attempt,
        "progress": shown_progress(run),
        "started_at": _when(run.started_at),
        "finished_at": _when(run.finished_at),
        # seconds since the epoch, so the page ticks the duration itself between polls
        "started_ts": run.started_at.timestamp() if run.started_at else None,
        "finished_ts": run.finished_at.timestamp() if run.finished_at else None,
        "now_ts": timezone.now().timestamp(),  # the server's clock: the page's own may be off
        "worker": run.worker.name if run.worker_id and run.worker else "",
    }
    if with_events:
        status["events"] = [
            {"state": e.to_state, "label": RunState(e.to_state).label, "at": _when(e.at, seconds=True),
             "attempt": e.attempt, "reason": e.reason}
            for e in run.events.all()
        ]
    return status


def shown_progress(run: Run) -> dict[str, Any]:
    """The run's reported progress as pages show it: a run that has ended has no time left, so no ETA.

    Besides the reported counts: "text" ("step 300 of 1000 · epoch 2 of 10 · about 2m 05s left") and
    "bar" ({"value", "max"}: by step of total when reported, else by epoch of epochs; None without either).
    """
    progress = dict(run.progress or {})
    if run.state in FINAL_STATES or run.state == RunState.PAUSED:  # not advancing: no time left to tell
        progress.pop("eta_seconds", None)
    progress["text"] = progress_text(progress)
    progress["bar"] = _progress_bar(progress)
    return progress


def progress_text(progress: dict[str, Any]) -> str:
    parts = [f"{done} {progress[done]} of {progress[whole]}" for done, whole in PROGRESS_PAIRS
             if isinstance(progress.get(done), int) and isinstance(progress.get(whole), int)]
    if isinstance(progress.get("eta_seconds"), int | float):
        parts.append(f"about {duration_text(progress['eta_seconds'])} left")
    return " · ".join(parts)


def duration_text(value: float) -> str:
    """A duration as 1h 02m, 3m 05s or 12s."""
    hours, rest = divmod(int(value), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _progress_bar(progress: dict[str, Any]) -> dict[str, int] | None:
    for done, whole in PROGRESS_PAIRS:
        if isinstance(progress.get(whole), int) and progress[whole] > 0:
            return {"value": min(max(int(progress.get(done) or 0), 0), progress[whole]), "max": progress[whole]}
    return None


def _when(moment: datetime | None, *, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def metric_series(run: Run, since: dict[str, int] | None = None) -> dict[str, dict[str, list[Any]]]:
    """Points newer than `since[key]` for every key; all points (downsampled) for keys not in `since`.

    Each series is {"steps", "values"}; a system metric's (`results.is_system`) has "wall_times" too
    (seconds since the epoch, one per point): the page charts those series against time.

    The summaries tell which keys have anything new; a whole series is drawn from its rollup
    (`dashboards.series.overviews`: no read of every point), the new points of the others are read.
    """
    from webapp.dashboards.series import overviews, series_refs  # NOTE: dashboards build on this app

    since = since or {}
    wanted: list[tuple[str, int]] = []
    whole: list[str] = []
    for key, last_step in run.summaries.values_list("key", "last_step"):
        after = since.get(key)
        if after is None:
            whole.append(key)
        elif last_step > after:
            wanted.append((key, after))
    result: dict[str, dict[str, list[Any]]] = {}
    for (_, key), drawn in overviews(series_refs([run.id], whole), MAX_POINTS).items() if whole else ():
        result[key] = {"steps": drawn.steps.tolist(), "values": [v if math.isfinite(v) else None for v in drawn.values.tolist()]}
        if is_system(key):
            result[key]["wall_times"] = drawn.walls.tolist()
    if not wanted:
        return result
    condition = Q()
    for key, after in wanted:
        condition |= Q(key=key, step__gt=after)
    series: dict[str, tuple[list[int], list[float | None], list[float]]] = {key: ([], [], []) for key, _ in wanted}
    rows = run.metrics.filter(condition).order_by("key", "step").values_list("key", "step", "value", "wall_time")
    for key, step, value, wall in rows:
        steps, values, walls = series[key]
        steps.append(step)
        values.append(value)
        walls.append(wall)
    for key, (steps, values, walls) in series.items():
        if not steps:
            continue
        keep = _kept(values, MAX_POINTS)
        result[key] = {"steps": [steps[i] for i in keep], "values": [values[i] if _finite(values[i]) else None for i in keep]}
        if is_system(key):
            result[key]["wall_times"] = [walls[i] for i in keep]
    return result


def downsample(steps: list[int], values: list[float | None], limit: int) -> tuple[list[int], list[float | None]]:
    """At most about `limit` points, by the one min/max-bucket rule the dashboards use too."""
    keep = _kept(values, limit)
    return [steps[i] for i in keep], [values[i] for i in keep]


def _kept(values: list[float | None], limit: int) -> list[int]:
    return minmax_indices(np.array([np.nan if v is None else v for v in values], dtype=float), limit).tolist()


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def log_lines(run: Run, *, after: int | None = None) -> list[dict[str, Any]]:
    """Lines with seq > `after`, oldest first; without `after`, the last `MAX_LOG_LINES` lines."""
    if after is None:
        newest = run.log_lines.order_by("-seq")[:MAX_LOG_LINES]
        return [_line(line) for line in reversed(list(newest.values("seq", "stream", "text")))]
    return [_line(line) for line in run.log_lines.filter(seq__gt=after).order_by("seq").values("seq", "stream", "text")[:MAX_LOG_LINES]]


def _line(row: Any) -> dict[str, Any]:
    return {"seq": row["seq"], "stream": row["stream"], "text": row["text"]}
