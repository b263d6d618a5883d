"""Compaction of old runs' raw metric points down to the points their rollups keep (`kiln compact-metrics`).

A chart draws a series' rollup (`webapp.experiments.rollup`): per bucket its first, min, max and
last point. Once a run is final and old, the raw points between those add nothing to its charts:
`metrics_compact` deletes them. Charts, summaries and the rollups stay exactly as they were; range
reads, zooms, exports and MLflow's get-history return only the kept points afterwards. System
metrics (sys/) have rollups too and are compacted the same way. A series whose stored rollup does
not describe its stored points (stored before rollups existed, or stale) is left whole.

Each run is compacted in its own transaction under its row lock (the lock ingestion takes), and
marked with `Run.metrics_compacted_at`, so an interruption leaves every run compacted or untouched,
and a compacted run is not looked at again. Superseded and replaced values (kept for audit) stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from webapp.experiments import rollup
from webapp.experiments.models import FINAL_STATES, Metric, MetricSummary, Run
from webapp.experiments.selectors import stored_rollups
from webapp.projects.models import Project

# step ranges per DELETE: two parameters each, within SQLite's oldest limit of 999 per statement
RANGES_PER_STATEMENT = 400


@dataclass(frozen=True)
class CompactReport:
    """What `metrics_compact` did (or, with dry_run, would do)."""

    runs: int  # runs compacted
    deleted: int  # raw points deleted
    kept: int  # raw points those runs keep
    left_whole: int  # series without a current rollup, their points kept
    dry_run: bool

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        lines = [f"{self.runs:,} run(s) {'to compact' if self.dry_run else 'compacted'}: "
                 f"{verb} {self.deleted:,} raw point(s), {self.kept:,} kept"]
        if self.left_whole:
            lines.append(f"{self.left_whole:,} series left whole: their stored rollup does not match their points")
        return lines


def metrics_compact(*, finished_before: datetime, project: Project | None = None, dry_run: bool = False) -> CompactReport:
    """Delete the raw points their rollups do not keep, in runs final and finished before `finished_before`.

    Only runs not compacted before; `project` narrows them to one project. dry_run counts the same without deleting.
    """
    candidates = Run.objects.filter(state__in=FINAL_STATES, finished_at__lt=finished_before, metrics_compacted_at__isnull=True)
    if project is not None:
        candidates = candidates.filter(project=project)
    runs = deleted = kept = left_whole = 0
    for run_id in list(candidates.order_by("id").values_list("id", flat=True)):
        done = _run_compact(run_id, finished_before, dry_run)
        if done is not None:
            runs, deleted, kept, left_whole = runs + 1, deleted + done[0], kept + done[1], left_whole + done[2]
    return CompactReport(runs=runs, deleted=deleted, kept=kept, left_whole=left_whole, dry_run=dry_run)


def _run_compact(run_id: int, finished_before: datetime, dry_run: bool) -> tuple[int, int, int] | None:
    """(deleted, kept, series left whole) of one run, in one transaction under its lock; None when it no longer qualifies."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().filter(  # ingestion's lock; the run checked again under it
            id=run_id, state__in=FINAL_STATES, finished_at__lt=finished_before, metrics_compacted_at__isnull=True
        ).values_list("id", flat=True).first()
        if locked is None:
            return None
        stored = dict(Metric.objects.filter(run_id=run_id).values("key").annotate(n=Count("id")).values_list("key", "n"))
        kept_steps = _kept_steps(run_id, stored)
        deleted = 0
        for key, steps in kept_steps.items():
            for outside in _outside(run_id, key, steps):
                deleted += outside.count() if dry_run else outside.delete()[0]
        if not dry_run:
            now = timezone.now()
            Run.objects.filter(id=run_id).update(metrics_compacted_at=now, updated_at=now)
    return deleted, sum(stored.values()) - deleted, len(stored) - len(kept_steps)


def _kept_steps(run_id: int, stored: dict[str, int]) -> dict[str, np.ndarray]:
    """The steps each series' rollup keeps (in order), for the series whose rollup covers exactly its stored points."""
    summaries = MetricSummary.objects.filter(run_id=run_id).values_list("key", "count", "last_step")
    current = {key: (count, last_step) for key, count, last_step in summaries if stored.get(key) == count}
    rollups = stored_rollups((run_id, key) for key in current)
    kept = {}
    for key, (count, last_step) in current.items():
        found = rollups.get((run_id, key))
        if found is not None and found[0] == count and found[1]["step"][-1, rollup.LAST] == last_step:
            kept[key] = rollup.points(found[1])[0]
    return kept


def _outside(run_id: int, key: str, kept: np.ndarray) -> Iterator[QuerySet[Metric]]:
    """The points of (run, key) whose step is not in `kept` (sorted, distinct): the ranges around kept steps, in batches."""
    inner = np.flatnonzero(kept[1:] > kept[:-1] + 1)  # a step can lie between kept[i] and kept[i + 1]
    ranges = [Q(step__lt=int(kept[0])), Q(step__gt=int(kept[-1]))]
    ranges += [Q(step__gt=low, step__lt=high) for low, high in zip(kept[inner].tolist(), kept[inner + 1].tolist(), strict=True)]
    for start in range(0, len(ranges), RANGES_PER_STATEMENT):
        batch = Q()
        for part in ranges[start : start + RANGES_PER_STATEMENT]:
            batch |= part
        yield Metric.objects.filter(batch, run_id=run_id, key=key)
