"""One tick of a controlled sweep, decided from plain records: which trials to stop early (or, with
ASHA's promotion variant, pause at a rung and promote: `promotion`), which points to start, whether the
sweep is over. Pure (no database); the controller applies the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optuna.trial import TrialState

from scheduler.sweeps.promotion import plan_promotions, trained_to_end
from scheduler.sweeps.study import TrialRecord, build_study, distributions, grid_size, study_attrs_of
from webapp.experiments.spec import SweepSpec

ACTIVE = frozenset({"queued", "scheduled", "running", "lost"})


@dataclass(frozen=True)
class NewTrial:
    params: dict[str, Any]
    attrs: dict[str, Any]  # the sampler's system attrs for it (e.g. its grid cell, CMA-ES generation)


@dataclass(frozen=True)
class SweepPlan:
    new_trials: list[NewTrial] = field(default_factory=list)
    stop_early: list[int] = field(default_factory=list)  # run ids the pruner ended at a rung (running or paused)
    pause: dict[int, int] = field(default_factory=dict)  # promotion variant: run id -> the rung it reached
    promote: dict[int, int] = field(default_factory=dict)  # paused run id -> the rung it now trains toward
    attrs: dict[int, dict[str, Any]] = field(default_factory=dict)  # run id -> its attrs, where they changed
    study_attrs: dict[str, Any] = field(default_factory=dict)
    finished: bool = False  # no trial left to make and none active


def total_trials(sweep: SweepSpec, max_runs: int) -> int:
    """How many trials the sweep makes in all: max_runs, or fewer when a grid has fewer cells."""
    return min(max_runs, grid_size(sweep)) if sweep.method == "grid" else max_runs


def plan_sweep(
    sweep: SweepSpec,
    trials: list[TrialRecord],
    *,
    study_name: str,
    state: str,
    max_runs: int,
    study_attrs: dict[str, Any] | None = None,
) -> SweepPlan:
    """Prune the running trials, then (while the sweep's `state` is running: not paused or stopped) ask
    for points to fill the free slots, at most `sweep.slots` active and `total_trials` in all."""
    study = build_study(sweep, trials, study_name=study_name, study_attrs=study_attrs)
    frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
    by_number = {record.number: record for record in trials}
    stop: list[int] = []
    for record in trials:
        if record.state != "running" or not record.curve or trained_to_end(record, sweep.early_terminate):
            continue
        trial = frozen[record.number]
        if study.pruner.prune(study, trial):
            stop.append(record.run_id)
            study._storage.set_trial_state_values(trial._trial_id, TrialState.PRUNED)
    active = sum(1 for record in trials if record.state in ACTIVE) - len(stop)
    total = total_trials(sweep, max_runs)
    room = min(sweep.slots - active, total - len(trials)) if state == "running" else 0
    early = sweep.early_terminate
    promotions = None
    if early is not None and early.promotes:
        assert sweep.metric is not None
        promotions = plan_promotions(early, trials, maximize=sweep.metric.goal == "maximize", slots=sweep.slots,
                                     total=total, state=state)
        stop, room, active = promotions.stop_early, promotions.new_trials, promotions.active
    space = distributions(sweep)
    new = []
    for _ in range(max(0, room)):
        asked = study.ask(fixed_distributions=space)
        new.append(NewTrial(params=dict(asked.params), attrs=dict(study._storage.get_trial_system_attrs(asked._trial_id))))
    changed: dict[int, dict[str, Any]] = {}
    for trial in study.get_trials(deepcopy=False):
        known = by_number.get(trial.number)
        if known is not None and dict(trial.system_attrs) != known.attrs:
            changed[known.run_id] = dict(trial.system_attrs)
    pause: dict[int, int] = {}
    promote: dict[int, int] = {}
    if promotions is not None:
        changed.update(promotions.attrs)
        pause, promote = promotions.pause, promotions.promote
    paused_left = bool(pause) or any(r.state == "paused" and r.run_id not in stop and r.run_id not in promote for r in trials)
    over = not new and active == 0 and not paused_left and (state == "stopped" or len(trials) >= total)
    return SweepPlan(new_trials=new, stop_early=stop, pause=pause, promote=promote, attrs=changed,
                     study_attrs=study_attrs_of(study), finished=over)
