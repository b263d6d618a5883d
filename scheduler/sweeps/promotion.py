"""ASHA's promotion variant over plain records: which trials pause, which are promoted, when it ends. Pure.

Li et al., "A System for Massively Parallel Hyperparameter Tuning" (MLSys 2020), Algorithm 2. Rung k
is at iteration min_iter * eta**k, for each such iteration below max_iter. A trial trains toward the
rung in its attrs (`ASHA_RUNG`: 0 for a new trial, len(rungs) for one promoted past the last rung,
which trains to its end) and pauses on reaching it, its value there stored as `completed_rung_<k>`
(Optuna's successive-halving key, so rungs are drawn alike for both variants); one that reached
max_iter before the controller saw its rung has finished training and is left to succeed. When a slot frees,
the best paused trial among the top floor(n / eta) of the n trials that reached the highest possible
rung is promoted once its job has ended and stored its results (it resumes from the checkpoint it
stored last); otherwise a new trial starts. When none may
start and none is active, a sweep that has no fully trained trial promotes its best paused trial of
its highest rung (so it ends with its best trial trained to max_iter) and otherwise its paused
trials end stopped early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from scheduler.sweeps.study import TrialRecord
from webapp.experiments.spec import EarlyTerminate

ASHA_RUNG = "asha_rung"  # the attr holding the rung a trial trains toward
ACTIVE = frozenset({"queued", "scheduled", "running", "lost"})


def rung_key(rung: int) -> str:
    return f"completed_rung_{rung}"


def trained_to_end(record: TrialRecord, early: EarlyTerminate | None) -> bool:
    """Whether a trial has reported `max_iter` already (a slow tick, a scheduler restart, epochs shorter than
    a tick): it has finished training, and pausing or stopping it now would only keep it from succeeding."""
    return (early is not None and early.max_iter is not None and bool(record.curve)
            and max(record.curve) >= early.max_iter)


def rung_iterations(early: EarlyTerminate) -> list[int]:
    """Each rung's iteration: min_iter * eta**k below max_iter (a trial at max_iter has finished)."""
    assert early.max_iter is not None  # the spec requires it for this variant
    rungs, iteration = [], early.min_iter
    while iteration < early.max_iter:
        rungs.append(iteration)
        iteration *= early.eta
    return rungs


def target_rung(record: TrialRecord) -> int:
    return rung_toward(record.attrs)


def rung_toward(attrs: dict[str, Any]) -> int:
    """The rung a trial's attrs say it trains toward (the worker reads it too: `KILN_SWEEP_RUNG`)."""
    rung = attrs.get(ASHA_RUNG, 0)
    return rung if isinstance(rung, int) and not isinstance(rung, bool) else 0


def rung_value(record: TrialRecord, rung: int, rungs: list[int] | None = None) -> float | None:
    """The trial's objective at `rung`: stored when it paused there, else (given `rungs`) read off its curve
    when it trained past the rung without pausing (a fast trial the controller did not catch in time):
    it counts among the rung's results as ASHA counts every trial that completed the rung."""
    value = record.attrs.get(rung_key(rung))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if rungs is None or rung >= len(rungs) or not record.curve or max(record.curve) < rungs[rung]:
        return None
    passed = record.curve.get(rungs[rung])
    return None if passed is None or math.isnan(passed) else float(passed)


@dataclass(frozen=True)
class Promotions:
    pause: dict[int, int] = field(default_factory=dict)  # run id -> the rung it reached
    promote: dict[int, int] = field(default_factory=dict)  # paused run id -> the rung it now trains toward
    stop_early: list[int] = field(default_factory=list)  # diverged at a rung, or paused when the sweep ends
    attrs: dict[int, dict[str, Any]] = field(default_factory=dict)  # run id -> its new attrs (whole)
    new_trials: int = 0  # how many new trials to start
    active: int = 0  # trials queued or running once the plan is applied


def plan_promotions(early: EarlyTerminate, trials: list[TrialRecord], *, maximize: bool, slots: int,
                    total: int, state: str) -> Promotions:
    """One tick: pause the running trials that reached their rung, then fill free slots (while the
    sweep's `state` is running) with promotions first and new trials next, at most `total` trials."""
    rungs = rung_iterations(early)
    pause: dict[int, int] = {}
    promote: dict[int, int] = {}
    stop: list[int] = []
    attrs: dict[int, dict[str, Any]] = {}
    now: list[TrialRecord] = []
    for record in trials:
        rung = target_rung(record)
        if (record.state == "running" and record.reached is not None and rung < len(rungs)
                and not trained_to_end(record, early)):
            if not math.isfinite(record.reached):  # diverged: nothing to promote
                stop.append(record.run_id)
                record = replace(record, state="stopped_early")
            else:
                pause[record.run_id] = rung
                attrs[record.run_id] = {**record.attrs, rung_key(rung): record.reached}
                record = replace(record, state="paused", attrs=attrs[record.run_id], attempt_over=False)
        now.append(record)
    active = sum(1 for record in now if record.state in ACTIVE)
    room = slots - active if state == "running" else 0
    new = 0
    settling = any(record.state == "paused" and not record.attempt_over for record in now)
    while room > 0:
        pick = _promotable(now, rungs, early.eta, maximize)
        ending = len(trials) + new >= total and active == 0 and not settling
        if pick is None and ending and not any(record.state == "succeeded" for record in now):
            pick = _best_paused(now, rungs, maximize)
        if pick is not None:
            index, record = pick
            promote[record.run_id] = target_rung(record) + 1
            attrs[record.run_id] = {**record.attrs, ASHA_RUNG: promote[record.run_id]}
            now[index] = replace(record, state="queued", attrs=attrs[record.run_id])
        elif len(trials) + new < total:
            new += 1
        else:
            break
        active += 1
        room -= 1
    over = state == "stopped" or (state == "running" and active == 0 and len(trials) + new >= total and not settling)
    if over:  # nothing will ever promote them; one that reached its rung just now stops there
        stop += [record.run_id for record in now if record.state == "paused"]
        pause = {run_id: rung for run_id, rung in pause.items() if run_id not in stop}
    return Promotions(pause=pause, promote=promote, stop_early=stop, attrs=attrs, new_trials=new, active=active)


def _ranked(results: list[tuple[float, TrialRecord]], maximize: bool) -> list[tuple[float, TrialRecord]]:
    return sorted(results, key=lambda pair: (-pair[0] if maximize else pair[0], pair[1].number))


def _promotable(trials: list[TrialRecord], rungs: list[int], eta: int, maximize: bool) -> tuple[int, TrialRecord] | None:
    """ASHA's get_job: from the highest rung down, the best paused trial of a rung's top floor(n / eta)."""
    index_of = {record.run_id: index for index, record in enumerate(trials)}
    for rung in reversed(range(len(rungs))):
        results = [(value, record) for record in trials if (value := rung_value(record, rung, rungs)) is not None]
        for _, record in _ranked(results, maximize)[: len(results) // eta]:
            if record.state == "paused" and record.attempt_over and target_rung(record) == rung:
                return index_of[record.run_id], record
    return None


def _best_paused(trials: list[TrialRecord], rungs: list[int], maximize: bool) -> tuple[int, TrialRecord] | None:
    """The end of a sweep with no fully trained trial: the best paused trial of the highest rung."""
    paused = [(index, record) for index, record in enumerate(trials) if record.state == "paused"]
    if not paused:
        return None
    highest = max(target_rung(record) for _, record in paused)
    at_top = [(rung_value(record, highest, rungs), index, record) for index, record in paused if target_rung(record) == highest]
    ranked = sorted(at_top, key=lambda item: (-(item[0] or 0.0) if maximize else (item[0] or 0.0), item[2].number))
    return ranked[0][1], ranked[0][2]
