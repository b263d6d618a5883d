"""What a compare view shows besides curves: run facts, the summary table, the config diff, best so far."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from webapp.experiments.models import MetricSummary, Run


@dataclass(frozen=True)
class DiffRow:
    key: str
    values: list[str]
    differs: bool


def runs_meta(runs: list[Run]) -> list[dict[str, Any]]:
    """Per run: identity, state, flat params and per-metric last/min/max; for charts and tables in the page."""
    summaries: dict[int, dict[str, dict[str, float | int | None]]] = {run.id: {} for run in runs}
    rows = MetricSummary.objects.filter(run__in=[run.id for run in runs]).values_list(
        "run_id", "key", "last", "min", "max", "last_step", "count"
    )
    for run_id, key, last, low, high, last_step, count in rows:
        summaries[run_id][key] = {
            "last": _finite(last), "min": _finite(low), "max": _finite(high), "last_step": last_step, "count": count,
        }
    return [
        {
            "id": run.id,
            "number": run.number,
            "name": run.name,
            "state": run.state,
            "state_label": run.get_state_display(),
            "final": run.is_final,
            "sweep": run.sweep_id,
            "finished_at": run.finished_at.timestamp() if run.finished_at else None,
            "params": {key: _scalar(value) for key, value in sorted((run.params or {}).items())},
            "summary": summaries[run.id],
        }
        for run in runs
    ]


def config_diff(runs: list[Run]) -> list[DiffRow]:
    """One row per param key across the runs (missing shows as an empty cell); `differs` marks the keys that vary."""
    keys = sorted({key for run in runs for key in (run.params or {})})
    rows = []
    for key in keys:
        values = [_display((run.params or {}).get(key, _MISSING)) for run in runs]
        rows.append(DiffRow(key=key, values=values, differs=len(set(values)) > 1))
    return rows


def best_so_far(runs_info: list[dict[str, Any]], key: str, mode: str) -> list[dict[str, Any]]:
    """The best value of `key` over the finished runs in the order the search made them (run number), as
    Optuna's optimization history plots it: with ASHA's promotion variant the trials left paused all end
    together when the sweep does, so the order they finished in says nothing about the search."""
    done = sorted(
        (info for info in runs_info if info["finished_at"] is not None and key in info["summary"]),
        key=lambda info: info["number"],
    )
    points, best = [], None
    for info in done:
        value = info["summary"][key][mode]
        if value is not None and (best is None or (value < best if mode == "min" else value > best)):
            best = value
        points.append({"number": info["number"], "run": info["id"], "value": value, "best": best})
    return points


class _Missing:
    pass


_MISSING = _Missing()


def _display(value: Any) -> str:
    if value is _MISSING:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _finite(value)
    return json.dumps(value, sort_keys=True)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
