"""The sweep controller's tick: each controlled sweep's trials read from the database, its plan applied.

Everything happens under the sweep's row lock in one transaction per sweep: trials made (runs queued
with their sampler attrs), trials stopped early, the pruner's rung values stored; with ASHA's promotion
variant also trials paused at a rung (the worker stops the job as for a cancel) and paused trials
promoted (re-queued: the next attempt resumes from the run's last checkpoint, `track.resume()`). A scheduler that
dies mid-tick committed all of a sweep's step or none of it; the next tick re-reads the rows, so no
trial is lost or made twice. A sweep whose plan raises is logged and skipped: it cannot stop the
scheduler (nor other sweeps).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from scheduler.sweeps.policy import plan_sweep
from scheduler.sweeps.promotion import rung_iterations, target_rung
from scheduler.sweeps.study import STUDY_ATTRS, TrialRecord
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Artifact, Metric, MetricSummary, Run, RunState, Sweep
from webapp.experiments.spec import SweepSpec
from webapp.experiments.submit import SWEEP_POINT, sweep_trials_create
from webapp.experiments.sweeps import sweep_finish

log = logging.getLogger("kiln.scheduler.sweeps")


def sweeps_tick() -> dict[str, int]:
    """Advance every controlled sweep that is not over; counts for the scheduler's log."""
    counts = {"trials": 0, "stopped_early": 0}
    for sweep_id in Sweep.objects.filter(controlled=True, finished_at__isnull=True).values_list("id", flat=True):
        try:
            made, stopped = advance_sweep(sweep_id)
        except Exception:
            log.exception("sweep %s: its controller step failed; the other sweeps go on", sweep_id)
            continue
        counts["trials"] += made
        counts["stopped_early"] += stopped
    return counts


def advance_sweep(sweep_id: int) -> tuple[int, int]:
    """One sweep's step: (trials made, trials stopped early)."""
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().filter(id=sweep_id, controlled=True).first()
        if sweep is None or sweep.finished_at is not None:
            return 0, 0
        spec = SweepSpec.model_validate(sweep.spec)
        records = trial_records(sweep, spec)
        if spec.early_terminate is not None and spec.early_terminate.promotes:
            records = _with_attempts_over([_with_rung_reached(record, spec) for record in records])
        attrs = sweep.trial_attrs or {}
        plan = plan_sweep(spec, records, study_name=f"kiln-sweep-{sweep.id}", state=sweep.state,
                          max_runs=sweep.max_runs, study_attrs=attrs.get(STUDY_ATTRS, {}))
        early = spec.early_terminate
        for run_id, rung in plan.pause.items():
            assert early is not None
            run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.PAUSED, exit_code=None,
                           reason=f"paused by asha at rung {rung} ({early.iteration} {rung_iterations(early)[rung]}): "
                                  "waits for a promotion")
        for run_id, rung in plan.promote.items():
            _promote(run_id, rung, spec)
        stopped = 0
        for run_id in plan.stop_early:
            record = next(r for r in records if r.run_id == run_id)
            at = max(record.curve) if record.curve else 0
            assert early is not None
            reason = f"stopped early by {early.type} at {early.iteration} {at}"
            if record.state == RunState.PAUSED or run_id in plan.pause:
                reason = f"stopped early by asha at {early.iteration} {at}: not promoted when the sweep ended"
            if run_transition(run_id=run_id, from_states=(RunState.RUNNING, RunState.PAUSED),
                              to_state=RunState.STOPPED_EARLY, reason=reason):
                stopped += 1
        runs = sweep_trials_create(sweep=sweep, points=[trial.params for trial in plan.new_trials])
        new_attrs: dict[str, Any] = dict(attrs)
        new_attrs.update({str(run_id): value for run_id, value in plan.attrs.items()})
        new_attrs.update({str(run.id): trial.attrs for run, trial in zip(runs, plan.new_trials, strict=True) if trial.attrs})
        new_attrs[STUDY_ATTRS] = plan.study_attrs
        if new_attrs != attrs:
            Sweep.objects.filter(id=sweep.id).update(trial_attrs=new_attrs)
        if plan.finished:
            sweep_finish(sweep)
    return len(runs), stopped


def trial_records(sweep: Sweep, spec: SweepSpec) -> list[TrialRecord]:
    """The sweep's trials (its runs, in the order made) with their objective as Optuna reads it:
    the latest report as the intermediate value at its iteration, the best as a finished trial's value."""
    assert spec.metric is not None
    runs = list(Run.objects.filter(sweep=sweep).order_by("number").values_list("id", "state", "spec"))
    summaries = {
        run_id: (last, last_step, count, low, high)
        for run_id, last, last_step, count, low, high in MetricSummary.objects.filter(
            run__sweep=sweep, key=spec.metric.name).values_list("run_id", "last", "last_step", "count", "min", "max")
    }
    by_epoch = spec.early_terminate is None or spec.early_terminate.iteration == "epoch"
    attrs = sweep.trial_attrs or {}
    records = []
    for number, (run_id, state, run_spec) in enumerate(runs):
        curve: dict[int, float] = {}
        value = None
        if run_id in summaries:
            last, last_step, count, low, high = summaries[run_id]
            curve = {int(count) if by_epoch else int(last_step): math.nan if last is None else float(last)}
            value = high if spec.metric.goal == "maximize" else low
        records.append(TrialRecord(run_id=run_id, number=number, params=dict(run_spec.get(SWEEP_POINT, {})),
                                   state=state, curve=curve, value=value, attrs=dict(attrs.get(str(run_id), {}))))
    return records


def _with_rung_reached(record: TrialRecord, spec: SweepSpec) -> TrialRecord:
    """A running trial with `reached` set once its objective reached the rung it trains toward and a
    checkpoint covers that report (the promoted attempt resumes from there): the value at the rung."""
    early, metric = spec.early_terminate, spec.metric
    assert early is not None and metric is not None
    rungs, rung = rung_iterations(early), target_rung(record)
    if record.state != RunState.RUNNING or rung >= len(rungs) or not record.curve or max(record.curve) < rungs[rung]:
        return record
    points = Metric.objects.filter(run_id=record.run_id, key=metric.name).order_by("step").values_list("step", "value")
    if early.iteration == "epoch":  # the n-th report is iteration n
        row = next(iter(points[rungs[rung] - 1: rungs[rung]]), None)
    else:
        row = points.filter(step__gte=rungs[rung]).first()
    if row is None or not Artifact.objects.filter(run_id=record.run_id, kind="checkpoint", step__gte=row[0]).exists():
        return record
    return replace(record, reached=math.nan if row[1] is None else float(row[1]))


def _with_attempts_over(records: list[TrialRecord]) -> list[TrialRecord]:
    """Paused trials with `attempt_over` False while their job may still be storing results: the worker sets
    the exit code once it stored them; past `settle_seconds` (a worker that died) it is taken as over."""
    paused = [record.run_id for record in records if record.state == RunState.PAUSED]
    if not paused:
        return records
    settle = timezone.now() - timedelta(seconds=settle_seconds())
    over = set(Run.objects.filter(id__in=paused).filter(Q(exit_code__isnull=False) | Q(finished_at__lt=settle))
               .values_list("id", flat=True))
    return [replace(record, attempt_over=record.run_id in over) if record.run_id in paused else record for record in records]


def settle_seconds() -> float:
    """How long a paused job may take to store its last results: its worker's patience for the database,
    twice (the results, then its end), and a margin for stopping the job."""
    return 2 * settings.CONFIG.worker_timeout_seconds + 30


def _promote(run_id: int, rung: int, spec: SweepSpec) -> bool:
    """paused -> queued: the next attempt resumes from the run's last checkpoint (one more attempt allowed:
    a promotion is not a retry)."""
    early = spec.early_terminate
    assert early is not None
    rungs = rung_iterations(early)
    toward = f"rung {rung} ({early.iteration} {rungs[rung]})" if rung < len(rungs) else f"the end ({early.iteration} {early.max_iter})"
    step = Artifact.objects.filter(run_id=run_id, kind="checkpoint").order_by("-step").values_list("step", flat=True).first()
    reason = f"promoted by asha toward {toward}; resumes from checkpoint step {step}"
    return run_transition(run_id=run_id, from_states=(RunState.PAUSED,), to_state=RunState.QUEUED, reason=reason,
                          pending_reason=reason, worker=None, gpu_indices=[], finished_at=None, exit_code=None,
                          max_attempts=F("max_attempts") + 1)
