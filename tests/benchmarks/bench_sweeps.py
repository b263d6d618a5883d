"""Adaptive sweeps in simulation: Kiln's sweep policy (`scheduler.sweeps.policy.plan_sweep`, Optuna's
TPE and successive halving underneath) on synthetic learning curves with a known optimum, several seeds.

Run: `python tests/benchmarks/bench_sweeps.py` (or `make bench`). Prints one JSON object. No training.

1. Bayesian (TPE) vs random search, one trial at a time: trials until the best final loss is within
   `TARGET_GAP` of the optimum (median over seeds; a seed that never gets there counts max_runs + 1).
   `random_over_bayes_trials` > 1 means Bayes needs fewer trials.
2. ASHA vs running every trial to the end: the same trials (points) with `parallel` slots; ASHA's best
   fully trained trial against the best of all of them trained fully, and the trial-iterations each
   spent. `asha_over_full_iterations` is the fraction of the iterations ASHA used (target <= 0.40).
3. ASHA's promotion variant on the same setup: trials pause at each rung and the top 1/eta are
   promoted (resumed where they paused, no iteration run twice); `promotion_over_full_iterations` likewise.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scheduler.sweeps.policy import plan_sweep
from scheduler.sweeps.promotion import rung_iterations, target_rung
from scheduler.sweeps.study import TrialRecord
from webapp.experiments.spec import SweepSpec

SEEDS = (0, 1, 2, 3, 4, 5, 6)
SEARCH_RUNS = 40
TARGET_GAP = 0.03
ASHA_RUNS, ASHA_ITERS, ASHA_PARALLEL, ETA = 81, 27, 4, 3
PARAMETERS = {
    "lr": {"min": 1e-5, "max": 1.0, "distribution": "log_uniform"},
    "dropout": {"min": 0.0, "max": 0.6},
    "width": {"min": 16, "max": 512, "distribution": "int_uniform"},
}
OPTIMUM = 0.05  # the final loss at lr=10**-2.5, dropout=0.2, width=256


def final_loss(point: dict) -> float:
    """The loss a point reaches when trained fully: a smooth bowl with its minimum OPTIMUM."""
    return (OPTIMUM + 0.08 * (math.log10(point["lr"]) + 2.5) ** 2 + 1.5 * (point["dropout"] - 0.2) ** 2
            + 0.3 * (math.log2(point["width"]) - 8) ** 2 / 9)


def loss_at(point: dict, iteration: int, noise: random.Random) -> float:
    """A learning curve falling towards the final loss (rank mostly kept), with a little noise."""
    return final_loss(point) * (1 + 3 / iteration) + noise.gauss(0, 0.005)


def spec(method: str, seed: int, **extra) -> SweepSpec:
    return SweepSpec.model_validate({"method": method, "seed": seed, "parameters": PARAMETERS,
                                     "metric": {"name": "loss", "goal": "minimize"}, **extra})


def trials_to_target(method: str, seed: int) -> int:
    sweep = spec(method, seed, max_runs=SEARCH_RUNS, parallel=1)
    records: list[TrialRecord] = []
    for number in range(SEARCH_RUNS):
        [trial] = plan_sweep(sweep, records, study_name="bench", state="running", max_runs=SEARCH_RUNS).new_trials
        value = final_loss(trial.params)
        records.append(TrialRecord(run_id=number, number=number, params=trial.params, state="succeeded",
                                   curve={1: value}, value=value, attrs=trial.attrs))
        if value <= OPTIMUM + TARGET_GAP:
            return number + 1
    return SEARCH_RUNS + 1


ASHA = {"type": "asha", "min_iter": 1, "eta": ETA}
PROMOTION = {**ASHA, "variant": "promotion", "max_iter": ASHA_ITERS}


def asha_simulation(seed: int, early_terminate: dict) -> dict:
    """Simulated time: each step every running trial trains one iteration and reports it; then one tick.

    `early_terminate` is the policy (`ASHA` or `PROMOTION`). Under the promotion variant a trial reaching its
    rung reports its value there (a checkpoint assumed), pauses, and trains on from that iteration if promoted."""
    sweep = spec("random", seed, max_runs=ASHA_RUNS, parallel=ASHA_PARALLEL, early_terminate=early_terminate)
    assert sweep.early_terminate is not None
    rungs = rung_iterations(sweep.early_terminate) if sweep.early_terminate.promotes else None
    noise = random.Random(seed)
    records: dict[int, TrialRecord] = {}
    done_iters: dict[int, int] = {}
    iterations = 0
    while True:
        plan = plan_sweep(sweep, list(records.values()), study_name="bench", state="running", max_runs=ASHA_RUNS)
        for run_id, attrs in plan.attrs.items():
            records[run_id] = _with(records[run_id], attrs=attrs)
        for run_id in plan.pause:  # pause and promote: the promotion variant only
            records[run_id] = _with(records[run_id], state="paused", reached=None)
        for run_id in plan.promote:
            records[run_id] = _with(records[run_id], state="running")
        for run_id in plan.stop_early:
            records[run_id] = _with(records[run_id], state="stopped_early", reached=None)
        for trial in plan.new_trials:
            number = len(records)
            records[number] = TrialRecord(run_id=number, number=number, params=trial.params, state="running",
                                          attrs=trial.attrs)
            done_iters[number] = 0
        if plan.finished:
            break
        for run_id, record in list(records.items()):
            if record.state != "running":
                continue
            done_iters[run_id] += 1
            iterations += 1
            t = done_iters[run_id]
            value = loss_at(record.params, t, noise)
            rung = target_rung(record)
            reached = value if rungs is not None and rung < len(rungs) and t == rungs[rung] else None
            best = min(value, record.value) if record.value is not None else value
            records[run_id] = _with(record, curve={t: value}, value=best, reached=reached,
                                    state="succeeded" if t == ASHA_ITERS else "running")
    full = [r for r in records.values() if r.state == "succeeded"]
    result = {"asha_best": min(final_loss(r.params) for r in full),
              "full_best": min(final_loss(r.params) for r in records.values()),
              "asha_iterations": iterations, "full_iterations": len(records) * ASHA_ITERS, "fully_trained": len(full),
              "stopped_early": sum(r.state == "stopped_early" for r in records.values())}
    if rungs is not None:
        result["promotions"] = sum(target_rung(r) for r in records.values())
    return result


def _with(record: TrialRecord, **changes) -> TrialRecord:
    return TrialRecord(**{**record.__dict__, **changes})


def _against_full(runs: list[dict], fraction_key: str) -> dict:
    """How the seeds' ASHA runs compare with training every trial fully: best found, iterations spent."""
    gaps = [a["asha_best"] - a["full_best"] for a in runs]
    return {"same_best_seeds": sum(gap <= 1e-12 for gap in gaps), "median_best_gap": statistics.median(gaps),
            fraction_key: round(statistics.median([a["asha_iterations"] / a["full_iterations"] for a in runs]), 3)}


def main() -> None:
    started = time.perf_counter()
    bayes = [trials_to_target("bayes", seed) for seed in SEEDS]
    rand = [trials_to_target("random", seed) for seed in SEEDS]
    asha = [asha_simulation(seed, ASHA) for seed in SEEDS]
    promotion = [asha_simulation(seed, PROMOTION) for seed in SEEDS]
    print(json.dumps({
        "benchmark": "sweeps",
        "seeds": len(SEEDS),
        "search": {"target": OPTIMUM + TARGET_GAP, "max_runs": SEARCH_RUNS, "bayes_trials": bayes, "random_trials": rand,
                   "bayes_median": statistics.median(bayes), "random_median": statistics.median(rand),
                   "random_over_bayes_trials": round(statistics.median(rand) / statistics.median(bayes), 3)},
        "asha": {"trials": ASHA_RUNS, "max_iter": ASHA_ITERS, "eta": ETA, "parallel": ASHA_PARALLEL,
                 "per_seed": asha, **_against_full(asha, "asha_over_full_iterations")},
        "asha_promotion": {"per_seed": promotion, **_against_full(promotion, "promotion_over_full_iterations")},
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=1))


if __name__ == "__main__":
    main()
