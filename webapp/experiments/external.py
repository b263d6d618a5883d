"""Runs logged by outside clients (the MLflow API, TensorBoard's writer, `kiln import`): kind "external".

An external run is never queued or scheduled and has no worker: it starts running when its client
creates it, and its client ends it (running -> succeeded | failed | cancelled through `run_transition`).
Its params, tags, metrics and artifacts are Kiln's own rows, so every page and the API show it like
any other run. Each service checks edit access through the one permission check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Metric, ReplacedMetric, Run, RunEvent, RunState, RunTag
from webapp.experiments.results import MetricPoint, metric_rollups_rebuild, metrics_log
from webapp.experiments.submit import _reserve_numbers
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access

EXTERNAL = "external"
MAX_KEY_CHARS = 250  # MLflow's entity key limit (tags, params)
MAX_PARAM_CHARS = 6000  # MLflow's param value limit
MAX_TAG_CHARS = 8000  # MLflow's tag value limit
MAX_NAME_CHARS = 200  # Run.name
FINAL = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


def external_run_create(
    *, user: User, project: Project, name: str = "", source: str, started_at: datetime | None = None,
    tags: Mapping[str, str] | None = None,
) -> Run:
    """A new running external run in `project` (needs edit access); `source` says which client logs it."""
    require_access(user, project, Access.EDIT)
    tags = dict(tags or {})
    _check_tags(tags)
    with transaction.atomic():
        number = _reserve_numbers(project, 1)
        run = Run.objects.create(
            project=project, owner=user, number=number, name=(name.strip() or f"run {number}")[:MAX_NAME_CHARS],
            kind=EXTERNAL, spec={"external": {"source": source}}, params={}, state=RunState.RUNNING,
            started_at=started_at or timezone.now(), pending_reason="", max_attempts=1, attempt=1, max_minutes=0,
        )
        RunEvent.objects.create(run=run, from_state="", to_state=RunState.RUNNING, attempt=1,
                                reason=f"started by an external client ({source})"[:500])
        RunTag.objects.bulk_create([RunTag(run=run, name=key, value=value) for key, value in tags.items()])
    return run


def external_run_end(*, user: User, run: Run, state: str, finished_at: datetime | None = None, reason: str = "") -> bool:
    """End an external run (succeeded, failed or cancelled) as its client says; False when it had already ended so.

    A run that ended in another state stays as it is: a ValidationError says so.
    """
    require_access(user, run.project, Access.EDIT)
    _require_external(run)
    if state not in FINAL:
        raise ValidationError({"status": f"An external run can only end as succeeded, failed or cancelled, not {state}."})
    moved = run_transition(run_id=run.id, from_states=(RunState.RUNNING,), to_state=state,
                           reason=reason or "ended by its client", finished_at=finished_at or timezone.now())
    if moved:
        return True
    current = Run.objects.filter(id=run.id).values_list("state", flat=True).get()
    if current != state:
        raise ValidationError({"status": f"The run has already ended as {current}; it cannot become {state}."})
    return False


def external_run_rename(*, user: User, run: Run, name: str) -> None:
    require_access(user, run.project, Access.EDIT)
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise ValidationError({"run_name": f"A run name has 1-{MAX_NAME_CHARS} characters."})
    Run.objects.filter(id=run.id).update(name=name, updated_at=timezone.now())
    run.name = name


def external_run_inputs_add(*, user: User, run: Run, inputs: list[dict[str, Any]]) -> None:
    """Record dataset inputs (MLflow's log_inputs) with the run's external record; the same input twice is kept once."""
    require_access(user, run.project, Access.EDIT)
    _require_external(run)
    with transaction.atomic():
        spec = Run.objects.select_for_update().filter(id=run.id).values_list("spec", flat=True).get()
        external = dict(spec.get("external") or {})
        known = list(external.get("inputs") or [])
        known += [item for item in inputs if item not in known]
        Run.objects.filter(id=run.id).update(spec={**spec, "external": {**external, "inputs": known}})


def param_stored(text: str) -> Any:
    """A param's text as Kiln stores it: a number when the text is exactly that number's spelling, else the text."""
    try:
        if str(int(text)) == text:
            return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) and repr(number) == text else text


def param_text(value: Any) -> str:
    """A stored param as text (MLflow's params are strings): the inverse of `param_stored`."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def run_params_log(*, user: User, run: Run, params: Mapping[str, str]) -> None:
    """Add params to a run; a param logged again must keep its value (MLflow's rule), else nothing is stored."""
    require_access(user, run.project, Access.EDIT)
    for key, value in params.items():
        _check_key("param", key)
        if len(value) > MAX_PARAM_CHARS:
            raise ValidationError({key: f"A param value has at most {MAX_PARAM_CHARS} characters, got {len(value)}."})
    with transaction.atomic():
        current = dict(Run.objects.select_for_update().filter(id=run.id).values_list("params", flat=True).get() or {})
        for key, value in params.items():
            if key in current and param_text(current[key]) != value:
                raise ValidationError({key: (
                    f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                    f"value='{param_text(current[key])}' for run ID='{run.id}'. Attempted logging new value '{value}'.")})
        current.update({key: param_stored(value) for key, value in params.items()})
        Run.objects.filter(id=run.id).update(params=current, updated_at=timezone.now())
    run.params = current


def run_tags_set(*, user: User, run: Run, tags: Mapping[str, str]) -> None:
    """Set key=value tags on a run (a tag set again takes the new value)."""
    require_access(user, run.project, Access.EDIT)
    tags = dict(tags)
    _check_tags(tags)
    if not tags:
        return
    RunTag.objects.bulk_create(
        [RunTag(run_id=run.id, name=key, value=value) for key, value in tags.items()],
        update_conflicts=True, unique_fields=["run", "name"], update_fields=["value"],
    )


def run_tag_delete(*, user: User, run: Run, key: str) -> None:
    """Remove a tag; a ValidationError when the run has no such tag (MLflow's rule)."""
    require_access(user, run.project, Access.EDIT)
    deleted, _ = RunTag.objects.filter(run_id=run.id, name=key).delete()
    if not deleted:
        raise ValidationError({key: f"No tag with name: {key} in run with id {run.id}"})


def metrics_log_latest(*, run_id: int, points: list[MetricPoint]) -> int:
    """Store points as `metrics_log` does, but a point at a step already stored replaces it (MLflow's latest wins).

    The value it replaces (stored before, or earlier in the same batch) moves to `ReplacedMetric`:
    MLflow keeps every value logged, so its get-history returns them; Kiln charts the latest. The
    same value logged again at the same step and time is stored once, as MLflow's store does.
    Returns how many points were new. The replaced keys' summaries and rollups are rebuilt in the same transaction.
    """
    if not points:
        return 0
    latest: dict[tuple[str, int], MetricPoint] = {}
    earlier: list[ReplacedMetric] = []  # replaced within the batch, in logging order
    for point in points:
        previous = latest.get((point.key, point.step))
        if previous is not None and _logged(previous) != _logged(point):
            earlier.append(ReplacedMetric(run_id=run_id, key=point.key, step=point.step, value=_logged(previous)[0],
                                          wall_time=previous.wall_time))
        latest[(point.key, point.step)] = point
    with transaction.atomic():
        fresh = metrics_log(run_id=run_id, points=points)
        replaced: list[ReplacedMetric] = []  # stored before the batch
        if fresh < len(latest):
            steps = {step for _, step in latest}
            stored = Metric.objects.filter(run_id=run_id, key__in={key for key, _ in latest}, step__in=steps)
            for metric_id, key, step, value, wall in stored.values_list("id", "key", "step", "value", "wall_time"):
                newest = latest.get((key, step))
                if newest is not None and _logged(newest) != (value, wall):
                    Metric.objects.filter(id=metric_id).update(value=_logged(newest)[0], wall_time=newest.wall_time)
                    replaced.append(ReplacedMetric(run_id=run_id, key=key, step=step, value=value, wall_time=wall))
        ReplacedMetric.objects.bulk_create(replaced + earlier)
        if replaced:
            metric_rollups_rebuild(run_id=run_id, keys=sorted({row.key for row in replaced}))
    return fresh


def _logged(point: MetricPoint) -> tuple[float | None, float]:
    """(value, wall time) as stored: NaN as NULL."""
    return None if math.isnan(point.value) else point.value, point.wall_time


def metric_points(items: Iterable[tuple[str, float, float, int]]) -> list[MetricPoint]:
    """(key, value, wall time in seconds, step) tuples as points, each key checked."""
    points = []
    for key, value, wall, step in items:
        if not key or len(key) > 200 or "\0" in key:
            raise ValidationError({"key": f"A metric key has 1-200 characters and no NUL, got {key[:250]!r}."})
        points.append(MetricPoint(key, int(step), float(value), float(wall)))
    if points and not np.isfinite([p.wall_time for p in points]).all():
        raise ValidationError({"timestamp": "A metric's timestamp must be finite."})
    return points


def _check_key(what: str, key: str) -> None:
    if not key or len(key) > MAX_KEY_CHARS or "\0" in key:
        raise ValidationError({"key": f"A {what} key has 1-{MAX_KEY_CHARS} characters and no NUL, got {key[:300]!r}."})


def _check_tags(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        _check_key("tag", key)
        if len(value) > MAX_TAG_CHARS or "\0" in value:
            raise ValidationError({key: f"A tag value has at most {MAX_TAG_CHARS} characters and no NUL."})


def _require_external(run: Run) -> None:
    if run.kind != EXTERNAL:
        raise ValidationError({"run_id": f"Run {run.id} is run by Kiln ({run.kind}); only external runs are ended by clients."})
