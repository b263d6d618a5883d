"""What runs report back: metrics, log lines, artifacts. Every write is idempotent."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction

from webapp.experiments.models import Artifact, LogLine, Metric, MetricSummary, Run

MAX_METRIC_BATCH = 10_000
MAX_LOG_LINE_CHARS = 10_000


class ResultError(ValueError):
    """A malformed report (bad key, non-finite step, oversized batch); nothing was stored."""


@dataclass(frozen=True)
class MetricPoint:
    key: str
    step: int
    value: float
    wall_time: float


def metrics_log(*, run_id: int, points: list[MetricPoint]) -> int:
    """Store points not stored before (unique on run, key, step) and update summaries; returns how many were new."""
    if len(points) > MAX_METRIC_BATCH:
        raise ResultError(f"a batch holds at most {MAX_METRIC_BATCH:,} points, got {len(points):,}")
    for point in points:
        if not point.key or len(point.key) > 200:
            raise ResultError(f"metric key {point.key!r} must be 1-200 characters")
        if not math.isfinite(point.wall_time):
            raise ResultError(f"metric {point.key!r} has a non-finite wall time")
    latest: dict[tuple[str, int], MetricPoint] = {(p.key, p.step): p for p in points}  # last write in a batch wins
    with transaction.atomic():
        Run.objects.select_for_update().filter(id=run_id).values_list("id", flat=True).get()  # one writer per run
        keys = {key for key, _ in latest}
        steps = {step for _, step in latest}
        existing = set(
            Metric.objects.filter(run_id=run_id, key__in=keys, step__in=steps).values_list("key", "step")
        )
        fresh = [p for pair, p in latest.items() if pair not in existing]
        Metric.objects.bulk_create(
            [Metric(run_id=run_id, key=p.key, step=p.step, value=p.value, wall_time=p.wall_time) for p in fresh],
            batch_size=2000,
        )
        _update_summaries(run_id, fresh)
    return len(fresh)


def _update_summaries(run_id: int, fresh: list[MetricPoint]) -> None:
    by_key: dict[str, list[MetricPoint]] = {}
    for point in fresh:
        by_key.setdefault(point.key, []).append(point)
    current = {s.key: s for s in MetricSummary.objects.filter(run_id=run_id, key__in=by_key)}
    created, updated = [], []
    for key, group in by_key.items():
        values = [p.value for p in group if not math.isnan(p.value)] or [math.nan]
        newest = max(group, key=lambda p: p.step)
        summary = current.get(key)
        if summary is None:
            created.append(
                MetricSummary(
                    run_id=run_id, key=key, last=newest.value, last_step=newest.step,
                    min=min(values), max=max(values), count=len(group),
                )
            )
            continue
        if newest.step >= summary.last_step:
            summary.last, summary.last_step = newest.value, newest.step
        summary.min = _nan_min(summary.min, min(values))
        summary.max = _nan_max(summary.max, max(values))
        summary.count += len(group)
        updated.append(summary)
    MetricSummary.objects.bulk_create(created)
    MetricSummary.objects.bulk_update(updated, ["last", "last_step", "min", "max", "count"])


def _nan_min(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else min(a, b)


def _nan_max(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


def logs_append(*, run_id: int, lines: Iterable[tuple[int, str, str]]) -> int:
    """Store (seq, stream, text) log lines; a seq stored before is ignored. Returns lines offered."""
    rows = [
        LogLine(run_id=run_id, seq=seq, stream=stream if stream in ("stdout", "stderr") else "stdout",
                text=text[:MAX_LOG_LINE_CHARS])
        for seq, stream, text in lines
    ]
    LogLine.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return len(rows)


def artifact_store(*, run_id: int, name: str, kind: str, file: File, step: int | None = None) -> Artifact:
    """Copy a file into artifact storage under the run, with its size and SHA-256; same name replaces."""
    if not name or len(name) > 255 or name.startswith(("/", ".")) or ".." in name.split("/"):
        raise ResultError(f"artifact name {name!r} is not a safe relative path")
    digest = hashlib.sha256()
    size = 0
    for chunk in file.chunks():
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    path = default_storage.save(f"runs/{run_id}/{kind}s/{name}", file)
    with transaction.atomic():
        old = Artifact.objects.filter(run_id=run_id, name=name).first()
        if old:
            old_path = old.storage_path
            old.delete()
            if old_path != path:
                default_storage.delete(old_path)
        return Artifact.objects.create(
            run_id=run_id, name=name, kind=kind, step=step, size=size, sha256=digest.hexdigest(), storage_path=path
        )
