"""The sweep controller's tick: each controlled sweep's trials read from the database, its plan applied.

Everything happens under the sweep's row lock in one transaction per sweep: trials made (runs queued
with their sampler attrs), trials stopped early, the pruner's rung values stored. A scheduler that
dies mid-tick committed all of a sweep's step or none of it; the next tick re-reads the rows, so no
trial is lost or made twice. A sweep whose plan raises is logged and skipped: it cannot stop the
scheduler (nor other sweeps).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db import transaction

from scheduler.sweeps.policy import plan_sweep
from scheduler.sweeps.study import STUDY_ATTRS, TrialRecord
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import MetricSummary, Run, RunState, Sweep
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
        attrs = sweep.trial_attrs or {}
        plan = plan_sweep(spec, records, study_name=f"kiln-sweep-{sweep.id}", state=sweep.state,
                          max_runs=sweep.max_runs, study_attrs=attrs.get(STUDY_ATTRS, {}))
        stopped = 0
        for run_id in plan.stop_early:
            record = next(r for r in records if r.run_id == run_id)
            at = max(record.curve) if record.curve else 0
            assert spec.early_terminate is not None
            if run_transition(run_id=run_id, from_states=(RunState.RUNNING,), to_state=RunState.STOPPED_EARLY,
                              reason=f"stopped early by {spec.early_terminate.type} at {spec.early_terminate.iteration} {at}"):
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
