"""Reads for the sweep pages: a project's sweeps, and one sweep's progress (its objective, trials by
state, parameter importance, the rungs its pruner recorded)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from scheduler.sweeps.controller import trial_records
from scheduler.sweeps.promotion import ASHA_RUNG
from scheduler.sweeps.study import STUDY_ATTRS, param_importances
from webapp.experiments.models import Sweep
from webapp.experiments.spec import SweepSpec
from webapp.experiments.sweeps import SweepSummary, sweep_metric

RUNG_PREFIX = "completed_rung_"  # Optuna's successive halving key for the value a trial had at a rung


def sweep_objective(sweep: Sweep) -> tuple[str, str]:
    """(metric, "min"|"max") the sweep page opens on: the sweep's metric in its goal's direction."""
    metric = sweep_metric(sweep)
    if metric is None:
        return "", "min"
    return metric["name"], "max" if metric["goal"] == "maximize" else "min"


def sweep_insights(sweep: Sweep) -> dict[str, Any]:
    """Parameter importance over the finished trials and, for early-terminated sweeps, each rung:
    its iteration and how many trials reached it."""
    try:
        spec = SweepSpec.model_validate(sweep.spec)
    except ValidationError:
        return {"importance": {}, "rungs": []}
    if spec.metric is None:
        return {"importance": {}, "rungs": []}
    records = trial_records(sweep, spec)
    return {"importance": param_importances(spec, records), "rungs": _rungs(sweep, spec)}


def _rungs(sweep: Sweep, spec: SweepSpec) -> list[dict[str, Any]]:
    early = spec.early_terminate
    if early is None:
        return []
    reached: dict[int, int] = {}
    promoted: dict[int, int] = {}  # promotion variant: trials promoted past each rung
    for run_id, attrs in (sweep.trial_attrs or {}).items():
        if run_id == STUDY_ATTRS or not isinstance(attrs, dict):
            continue
        for key in attrs:
            if key.startswith(RUNG_PREFIX) and key[len(RUNG_PREFIX):].isdigit():
                rung = int(key[len(RUNG_PREFIX):])
                reached[rung] = reached.get(rung, 0) + 1
        toward = attrs.get(ASHA_RUNG)
        for rung in range(toward if isinstance(toward, int) else 0):
            promoted[rung] = promoted.get(rung, 0) + 1
    return [{"rung": rung, "iteration": early.min_iter * early.eta ** rung, "trials": reached[rung],
             "promoted": promoted.get(rung, 0)} for rung in sorted(reached)]


def controls_for(summary: SweepSummary) -> list[str]:
    """The actions the sweep's page offers in its current state."""
    state = summary.state
    if state in ("stopped", "finished"):
        return ["max_runs"] if summary.sweep.controlled and state == "finished" else []
    if not summary.sweep.controlled:
        return ["stop"]
    return ["resume" if state == "paused" else "pause", "stop", "max_runs"]
