"""Which columns the run table shows: a user's pick per project, or defaults read from the visible runs.

A column id is `param:KEY`, `metric:KEY:last|min|max` or `attr:NAME` (one of `ATTRIBUTES`). Without a
saved pick the table shows the params whose values differ between the visible runs, the metrics the
newest runs logged last (not system metrics), and the attributes in `DEFAULT_ATTRIBUTES`. A metric the
page sorts or filters on is always shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from webapp.experiments.models import Run
from webapp.experiments.results import is_system
from webapp.projects.models import Project, RunTableColumns

ATTRIBUTES = {"owner": "Owner", "tags": "Tags", "duration": "Duration", "worker": "Worker", "created": "Created"}
DEFAULT_ATTRIBUTES = ("owner", "tags", "duration", "created")
STATS = ("last", "min", "max")
MAX_DEFAULT_PARAMS = 6
MAX_DEFAULT_METRICS = 6
MAX_COLUMNS = 40
MAX_ID_LENGTH = 300
_SORTS = {"owner": "owner", "created": "created"}  # attributes the table can sort on


@dataclass(frozen=True)
class Column:
    id: str
    kind: str  # "param", "metric" or "attr"
    key: str
    stat: str = ""

    @property
    def label(self) -> str:
        if self.kind == "attr":
            return ATTRIBUTES[self.key]
        return self.key if self.stat in ("", "last") else f"{self.key} ({self.stat})"

    @property
    def sort(self) -> str:
        """The `sort` value for this column, or "" when the table cannot sort on it."""
        if self.kind == "metric" and self.stat == "last":
            return f"metric:{self.key}"
        return _SORTS.get(self.key, "") if self.kind == "attr" else ""

    @property
    def numeric(self) -> bool:
        return self.kind == "metric" or self.key == "duration"


def column(column_id: str) -> Column:
    """The column an id names; ValueError says, naming it, what is wrong."""
    kind, _, rest = column_id.partition(":")
    if len(column_id) > MAX_ID_LENGTH:
        raise ValueError(f"`{column_id[:40]}…`: a column id is at most {MAX_ID_LENGTH} characters.")
    if kind == "param" and rest:
        return Column(column_id, "param", rest)
    if kind == "metric":
        key, _, stat = rest.rpartition(":")
        if key and stat in STATS:
            return Column(column_id, "metric", key, stat)
    if kind == "attr" and rest in ATTRIBUTES:
        return Column(column_id, "attr", rest)
    raise ValueError(f"`{column_id}`: not a column (write param:KEY, metric:KEY:last, metric:KEY:min, "
                     f"metric:KEY:max or attr:{'|'.join(ATTRIBUTES)}).")


def parse_columns(ids: list[str]) -> list[str]:
    """Valid, distinct column ids in the given order; ValueError names the first bad one."""
    if len(ids) > MAX_COLUMNS:
        raise ValueError(f"Pick at most {MAX_COLUMNS} columns.")
    return list(dict.fromkeys(column(item).id for item in ids))


def saved_columns(user: Any, project: Project) -> list[str] | None:
    if not getattr(user, "is_authenticated", False):
        return None
    row = RunTableColumns.objects.filter(user=user, project=project).values_list("columns", flat=True).first()
    return list(row) if row is not None else None


def columns_save(*, user: Any, project: Project, ids: list[str]) -> list[str]:
    """Remember `ids` as the user's columns for the project; ValueError (nothing saved) for a bad id."""
    columns = parse_columns(ids)
    RunTableColumns.objects.update_or_create(user=user, project=project, defaults={"columns": columns})
    return columns


def columns_reset(*, user: Any, project: Project) -> None:
    RunTableColumns.objects.filter(user=user, project=project).delete()


def default_columns(runs: list[Run]) -> list[str]:
    varying = [f"param:{key}" for key in _varying_params(runs)][:MAX_DEFAULT_PARAMS]
    metrics = [f"metric:{key}:last" for key in _recent_metrics(runs)][:MAX_DEFAULT_METRICS]
    return varying + metrics + [f"attr:{name}" for name in DEFAULT_ATTRIBUTES]


def shown_columns(runs: list[Run], saved: list[str] | None, asked_metrics: list[str]) -> list[Column]:
    """The saved pick (ids no longer valid are dropped) or the defaults, with asked-for metrics first."""
    ids = default_columns(runs) if saved is None else [i for i in saved if _valid(i)]
    asked = [f"metric:{key}:last" for key in asked_metrics if f"metric:{key}:last" not in ids]
    return [column(i) for i in dict.fromkeys(asked + ids)]


def choices(runs: list[Run], shown: list[Column]) -> dict[str, list[str]]:
    """What the column picker offers: the visible runs' params and metrics (and anything shown), the attributes."""
    params = sorted({key for run in runs for key in run.params} | {c.key for c in shown if c.kind == "param"})
    metrics = sorted({s.key for run in runs for s in run.summaries.all()} | {c.key for c in shown if c.kind == "metric"},
                     key=lambda key: (is_system(key), key))
    return {"params": params, "metrics": metrics, "attributes": list(ATTRIBUTES)}


def cell(run: Run, col: Column, summaries: dict[str, Any]) -> Any:
    """The value a column shows for a run (formatted by the template according to the column)."""
    if col.kind == "param":
        value = run.params.get(col.key)
        return "" if value is None else str(value)
    if col.kind == "metric":
        summary = summaries.get(col.key)
        if summary is None:
            return None
        value = getattr(summary, col.stat)
        return math.nan if value is None and col.stat == "last" else value  # a NULL last value was NaN
    if col.key == "owner":
        return run.owner.username
    if col.key == "worker":
        return run.worker.name if run.worker_id and run.worker else ""
    if col.key == "duration":
        return run_duration(run)
    if col.key == "created":
        return run.created_at
    return sorted(tag.name for tag in run.tags.all())


def run_duration(run: Run) -> float | None:
    """Seconds from start to finish, or to now while the run runs; None before it starts."""
    if run.started_at is None:
        return None
    return ((run.finished_at or timezone.now()) - run.started_at).total_seconds()


def _valid(column_id: str) -> bool:
    try:
        column(column_id)
    except ValueError:
        return False
    return True


def _varying_params(runs: list[Run]) -> list[str]:
    """Params whose value differs between the runs, those with the most distinct values first (a sweep's
    searched params before one a single run lacks), ties by name."""
    keys = sorted({key for run in runs for key in run.params})
    distinct = {key: len({repr(run.params.get(key)) for run in runs}) for key in keys}
    return sorted((key for key in keys if distinct[key] > 1), key=lambda key: -distinct[key])


def _recent_metrics(runs: list[Run]) -> list[str]:
    """Non-system keys, newest run first and within a run the key it began logging last first."""
    keys: dict[str, None] = {}
    for run in sorted(runs, key=lambda r: -r.number):
        for summary in sorted(run.summaries.all(), key=lambda s: -s.id):
            if not is_system(summary.key):
                keys.setdefault(summary.key)
    return list(keys)
