"""Reads for the sweep pages: a project's sweeps, and one sweep's progress (its objective, trials by
state, parameter importance, the rungs its pruner recorded), with a version its live page polls on."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from typing import Any

import orjson
from django.db.models import Count, F, Sum, Window
from django.db.models.functions import RowNumber
from pydantic import ValidationError

from scheduler.sweeps.controller import trial_records
from scheduler.sweeps.promotion import rung_iterations, rung_value, target_rung
from scheduler.sweeps.study import TrialRecord, param_importances
from webapp.experiments.models import Metric, MetricSummary, Run, RunState, Sweep
from webapp.experiments.spec import EarlyTerminate, SweepSpec
from webapp.experiments.sweeps import ACTIVE, SweepSummary, sweep_metric

# trials in these states may still change: the page polls until none is left and the sweep is over
LIVE_TRIAL_STATES = frozenset((*ACTIVE, RunState.PAUSED))


def sweep_objective(sweep: Sweep) -> tuple[str, str]:
    """(metric, "min"|"max") the sweep page opens on: the sweep's metric in its goal's direction."""
    metric = sweep_metric(sweep)
    if metric is None:
        return "", "min"
    return metric["name"], "max" if metric["goal"] == "maximize" else "min"


def sweep_insights(sweep: Sweep) -> dict[str, Any]:
    """Parameter importance over the finished trials and, for early-terminated sweeps, each rung:
    its iteration, how many trials reached it and (promotion variant) how many were promoted past it."""
    try:
        spec = SweepSpec.model_validate(sweep.spec)
    except ValidationError:
        return {"importance": {}, "rungs": []}
    if spec.metric is None:
        return {"importance": {}, "rungs": []}
    records = trial_records(sweep, spec)
    return {"importance": param_importances(spec, records), "rungs": _rungs(spec, records)}


def _rungs(spec: SweepSpec, records: list[TrialRecord]) -> list[dict[str, Any]]:
    """A trial reached a rung when `rung_value` has its value there: stored when it paused or was
    stopped there, or read off its curve when it trained past the rung."""
    early = spec.early_terminate
    if early is None:
        return []
    rungs = _ladder(early, records)
    records = _with_rung_points(spec, records, rungs)
    return [{"rung": rung, "iteration": iteration,
             "trials": sum(1 for record in records if rung_value(record, rung, rungs) is not None),
             "promoted": sum(1 for record in records if target_rung(record) > rung)}
            for rung, iteration in enumerate(rungs)]


def _ladder(early: EarlyTerminate, records: list[TrialRecord]) -> list[int]:
    """The rungs' iterations: all of them below max_iter; without max_iter (ASHA's stopping variant)
    those up to the furthest iteration a trial has reported."""
    if early.max_iter is not None:
        return rung_iterations(early)
    furthest = max((max(record.curve) for record in records if record.curve), default=0)
    return rung_iterations(early.model_copy(update={"max_iter": furthest + 1}))


def _with_rung_points(spec: SweepSpec, records: list[TrialRecord], rungs: list[int]) -> list[TrialRecord]:
    """Records whose curve also holds their objective at each rung they trained past with no stored value
    (a trial the controller did not see at the rung): the n-th report for epoch rungs, else the first report
    at or after the rung's step (as the controller reads a rung). One query per rung that needs it."""
    assert spec.metric is not None and spec.early_terminate is not None
    by_epoch = spec.early_terminate.iteration == "epoch"
    points: dict[int, dict[int, float]] = {}
    for rung, iteration in enumerate(rungs):
        missing = [record.run_id for record in records
                   if record.curve and max(record.curve) >= iteration and rung_value(record, rung, rungs) is None
                   and iteration not in record.curve]
        if not missing:
            continue
        found = Metric.objects.filter(run_id__in=missing, key=spec.metric.name)
        if not by_epoch:
            found = found.filter(step__gte=iteration)
        found = found.annotate(n=Window(RowNumber(), partition_by=[F("run_id")], order_by=F("step").asc()))
        for run_id, value in found.filter(n=iteration if by_epoch else 1).values_list("run_id", "value"):
            points.setdefault(run_id, {})[iteration] = math.nan if value is None else float(value)
    return [replace(record, curve={**record.curve, **points[record.run_id]}) if record.run_id in points else record
            for record in records]


def sweep_is_final(summary: SweepSummary) -> bool:
    """Over for good: stopped or finished, and no trial left that may still run (a stopped sweep's
    running trials finish; its paused ones are stopped early by the controller)."""
    return summary.state in ("stopped", "finished") and not LIVE_TRIAL_STATES & set(summary.by_state)


def sweep_version(sweep: Sweep, *view: str) -> str:
    """A digest of everything the sweep page shows (the sweep, its trials' states, their metric summaries),
    for the live page's ETag: three small queries, so an unchanged sweep is cheap to poll. `view`: the
    page's own options (its objective), which change what it shows."""
    runs = list(Run.objects.filter(sweep=sweep).order_by("id").values_list("id", "name", "state", "finished_at"))
    summaries = MetricSummary.objects.filter(run__sweep=sweep).aggregate(
        keys=Count("id"), points=Sum("count"), steps=Sum("last_step"), last=Sum("last"), low=Sum("min"), high=Sum("max"))
    seen = [sweep.name, sweep.state, sweep.max_runs, sweep.finished_at, sweep.trial_attrs, runs, summaries, view]
    return hashlib.sha256(orjson.dumps(seen, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def controls_for(summary: SweepSummary) -> list[str]:
    """The actions the sweep's page offers in its current state."""
    state = summary.state
    if state in ("stopped", "finished"):
        return ["max_runs"] if summary.sweep.controlled and state == "finished" else []
    if not summary.sweep.controlled:
        return ["stop"]
    return ["resume" if state == "paused" else "pause", "stop", "max_runs"]
