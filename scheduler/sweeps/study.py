"""Kiln's sweep trials as an Optuna study, rebuilt for each decision from the database's rows.

The database is the source of truth: a trial is a run, its params the run's sweep point, its
intermediate values the run's objective metric. Each tick builds an in-memory study from those rows
(`optuna.trial.create_trial` + `study.add_trial`), asks it for points or prunes with it, and hands
back the system attributes the sampler and pruner wrote (CMA-ES state, rung values) to be stored
with the sweep, so nothing is lost across scheduler restarts and no trial exists twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from webapp.experiments.spec import EarlyTerminate, SweepSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
STUDY_ATTRS = "_study"  # the key, in a sweep's stored attrs, of the study-level system attrs
Scalar = bool | int | float | str

# a run's state as an Optuna trial state: queued and running trials are RUNNING (TPE's constant liar
# then keeps parallel trials apart); stopped early and paused (at a rung) are PRUNED; failed and cancelled
# runs are FAIL
_ACTIVE = {"queued", "scheduled", "running", "lost"}


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the database has it."""

    run_id: int
    number: int  # 0-based, in the order the trials were made
    params: dict[str, Scalar]
    state: str  # the run's state
    curve: dict[int, float] = field(default_factory=dict)  # iteration -> objective value (NaN: diverged)
    value: float | None = None  # the run's best objective value in the goal's direction
    attrs: dict[str, Any] = field(default_factory=dict)  # what the sampler/pruner stored for it
    # promotion variant: the objective at the rung it trains toward, once it got there and checkpointed
    reached: float | None = None
    # a paused trial's job has ended and stored its last results (only then is it promoted)
    attempt_over: bool = True


def distributions(sweep: SweepSpec) -> dict[str, BaseDistribution]:
    """Each parameter as an Optuna distribution."""
    result: dict[str, BaseDistribution] = {}
    for name, p in sweep.parameters.items():
        if p.values is not None:
            result[name] = CategoricalDistribution(list(p.values))
        elif p.distribution == "int_uniform":
            result[name] = IntDistribution(math.ceil(float(p.min or 0)), math.floor(float(p.max or 0)))
        else:
            result[name] = FloatDistribution(float(p.min or 0), float(p.max or 0), log=p.distribution == "log_uniform")
    return result


def grid_size(sweep: SweepSpec) -> int:
    return math.prod(len(p.values or []) for p in sweep.parameters.values())


def make_sampler(sweep: SweepSpec, salt: int) -> optuna.samplers.BaseSampler:
    """The sweep's sampler, seeded by the sweep's seed and `salt` (the trials made so far): reproducible."""
    seed = (sweep.seed * 1_000_003 + salt) % 2**32
    if sweep.method == "bayes":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=_startup_trials(sweep))
    if sweep.method == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=0, warn_independent_sampling=False)
    if sweep.method == "grid":
        space = {name: list(p.values or []) for name, p in sweep.parameters.items()}
        return optuna.samplers.GridSampler(space, seed=sweep.seed)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(early: EarlyTerminate | None) -> optuna.pruners.BasePruner:
    if early is None or early.promotes:  # ASHA's promotion is Kiln's (scheduler.sweeps.promotion): Optuna has none
        return optuna.pruners.NopPruner()
    if early.type == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=early.min_iter, max_resource=early.max_iter or early.min_iter,
                                              reduction_factor=early.eta)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=early.min_iter, reduction_factor=early.eta)


def build_study(sweep: SweepSpec, trials: list[TrialRecord], *, study_name: str, salt: int | None = None,
                study_attrs: dict[str, Any] | None = None) -> optuna.Study:
    """An in-memory study holding `trials` (in their order), with the sweep's sampler and pruner."""
    assert sweep.metric is not None
    study = optuna.create_study(
        study_name=study_name,
        direction=sweep.metric.goal,
        sampler=make_sampler(sweep, len(trials) if salt is None else salt),
        pruner=make_pruner(sweep.early_terminate),
    )
    for key, value in (study_attrs or {}).items():
        study._storage.set_study_system_attr(study._study_id, key, value)
    space = distributions(sweep)
    for record in sorted(trials, key=lambda t: t.number):
        study.add_trial(_frozen(record, space))
    return study


def study_attrs_of(study: optuna.Study) -> dict[str, Any]:
    return dict(study._storage.get_study_system_attrs(study._study_id))


def _frozen(record: TrialRecord, space: dict[str, BaseDistribution]) -> optuna.trial.FrozenTrial:
    # a point outside the space (a value its distribution cannot hold) is left out of the trial
    params = {name: point for name, point in record.params.items()
              if name in space and _holds(space[name], point)}
    dists = {name: space[name] for name in params}
    intermediate = dict(record.curve)  # NaN kept: the pruner stops a diverged trial
    value: float | None = None
    if record.state in _ACTIVE:
        state = TrialState.RUNNING
    elif record.state == "succeeded" and record.value is not None and math.isfinite(record.value):
        state, value = TrialState.COMPLETE, record.value
    elif record.state in ("stopped_early", "paused"):
        state = TrialState.PRUNED
    else:
        state = TrialState.FAIL
    return optuna.trial.create_trial(
        state=state, value=value, params=params, distributions=dists,
        intermediate_values=intermediate, system_attrs=dict(record.attrs),
    )


def _holds(distribution: BaseDistribution, value: Any) -> bool:
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):  # a categorical's unknown choice, a string where a number was
        return False


def _startup_trials(sweep: SweepSpec) -> int:
    """Random trials before TPE models the results: Optuna's 10, fewer for small sweeps."""
    return max(2, min(10, sweep.max_runs // 5))


def param_importances(sweep: SweepSpec, trials: list[TrialRecord]) -> dict[str, float]:
    """How much each parameter explains the objective over the trials that ended with a value (Optuna's
    PED-ANOVA, no extra dependency), largest first; {} until MIN_TRIALS_FOR_IMPORTANCE have.

    A trial stopped early counts with the best value it reached, as W&B's importance reads every run's
    summary: under ASHA most trials end so, and Optuna, which reads only completed trials, would
    otherwise have too few to say anything."""
    finished = [replace(t, state="succeeded") for t in trials if t.state in ("succeeded", "stopped_early")
                and t.value is not None and math.isfinite(t.value)]
    if len(finished) < MIN_TRIALS_FOR_IMPORTANCE or sweep.metric is None:
        return {}
    study = build_study(sweep, finished, study_name="importance")
    try:
        found = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. every trial has the same value
        return {}
    return {name: float(value) for name, value in found.items() if math.isfinite(value)}


MIN_TRIALS_FOR_IMPORTANCE = 4
