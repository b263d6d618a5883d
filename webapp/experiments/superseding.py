"""Resumed series: a new attempt's points replace those a lost attempt logged past the step it resumes from.

When attempt A starts from the checkpoint of step s (or from nothing: before step 0), the points
earlier attempts stored with a step after s move from `Metric` to `SupersededMetric` (kept for
audit, never charted, summarised, exported or compared), once: a `MetricResume` row records it.
Points of an earlier attempt that arrive later still (a worker that was cut off stores its
results once the database answers) go straight to `SupersededMetric` when a later attempt's
resume covers their step. Both hold the run's row lock, as every change to a run's points does.
System metrics (sys/*) are never superseded: their steps number samples, not training steps, and
each sample was measured when its wall_time says, whichever attempt took it.

Example:
    >>> metrics_supersede_after(run_id=run.id, step=29, attempt=2)  # before attempt 2's job starts
    30
"""

from __future__ import annotations

import numpy as np
from django.db import connection, transaction

from webapp.experiments.models import Metric, MetricResume, Run, SupersededMetric
from webapp.experiments.results import SYSTEM_PREFIX, KeyPoints, _stored, is_system, metric_rollups_rebuild


def metrics_supersede_after(*, run_id: int, step: int | None, attempt: int) -> int:
    """Supersede the points earlier attempts logged after `step` (None: all of them) as `attempt` starts; returns how many.

    Idempotent: the first call for an attempt does it, a repeat (or a call for an attempt that is
    no longer the run's current one) changes nothing. The affected keys' summaries and rollups
    are rebuilt from the points that stay.
    """
    with transaction.atomic():
        current = Run.objects.select_for_update().filter(id=run_id).values_list("attempt", flat=True).get()
        if current != attempt or MetricResume.objects.filter(run_id=run_id, attempt=attempt).exists():
            return 0
        chosen = Metric.objects.filter(run_id=run_id).exclude(key__startswith=SYSTEM_PREFIX)  # wall-time series stay
        if step is not None:
            chosen = chosen.filter(step__gt=step)
        keys = list(chosen.values_list("key", flat=True).distinct())
        moved = 0
        if keys:
            _copy_to_superseded(run_id, step, attempt)
            moved, _ = chosen.delete()
            metric_rollups_rebuild(run_id=run_id, keys=keys)
        MetricResume.objects.create(run_id=run_id, attempt=attempt, after_step=step, superseded=moved)
    return moved


def _copy_to_superseded(run_id: int, step: int | None, attempt: int) -> None:
    """INSERT ... SELECT the run's points after `step` into the superseded table (a point superseded before by this attempt stays)."""
    source, target = (connection.ops.quote_name(m._meta.db_table) for m in (Metric, SupersededMetric))
    ignore = ("INSERT", "ON CONFLICT DO NOTHING") if connection.vendor == "postgresql" else ("INSERT OR IGNORE", "")
    after = "" if step is None else " AND step > %s"
    sql = (
        f"{ignore[0]} INTO {target} (run_id, key, step, value, wall_time, superseded_by) "  # noqa: S608 -- model tables
        f"SELECT run_id, key, step, value, wall_time, %s FROM {source} WHERE run_id = %s AND key NOT LIKE %s{after} "
        f"{ignore[1]}"
    )
    with connection.cursor() as cursor:
        params: list[int | str] = [attempt, run_id, SYSTEM_PREFIX + "%"]
        cursor.execute(sql, params + ([] if step is None else [step]))


def superseded_set_aside(run_id: int, attempt: int, groups: dict[str, KeyPoints]) -> dict[str, KeyPoints]:
    """Store as superseded the points of `attempt` that a later attempt's resume covers; returns the others.

    A point at step k is superseded by the first later attempt that resumed from before k. The
    caller (`metrics_log`) holds the run's lock.
    """
    resumes = list(
        MetricResume.objects.filter(run_id=run_id, attempt__gt=attempt).order_by("attempt").values_list("attempt", "after_step")
    )
    if not resumes:
        return groups
    rows, kept = [], {}
    for key, group in groups.items():
        if is_system(key):  # a system sample was measured when it says, whichever attempt took it
            kept[key] = group
            continue
        by = np.zeros(len(group), np.int64)  # 0: not superseded
        for later, after in resumes:
            by[(by == 0) & (group.steps > (np.iinfo(np.int64).min if after is None else after))] = later
        gone = by > 0
        rows += [
            SupersededMetric(run_id=run_id, key=key, step=s, value=_stored(v), wall_time=w, superseded_by=b)
            for s, v, w, b in zip(group.steps[gone].tolist(), group.values[gone].tolist(), group.walls[gone].tolist(),
                                  by[gone].tolist(), strict=True)
        ]
        if not gone.all():
            kept[key] = group.only(~gone)
    SupersededMetric.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return kept
