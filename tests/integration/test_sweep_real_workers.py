"""A 12-trial ASHA sweep on a recipe with the real `kiln scheduler` and `kiln worker`: trials are made as
slots free, weak ones are stopped early (their metrics kept), the best one trains to the end, and a
scheduler restart in the middle loses and duplicates nothing."""

from __future__ import annotations

import pytest
from cluster import wait_for

from webapp.experiments.models import Metric, Run, RunState, Sweep, SweepState
from webapp.experiments.submit import run_submit
from webapp.experiments.sweeps import sweep_summary

pytestmark = pytest.mark.slow
EPOCHS = 9


def test_an_asha_sweep_stops_weak_trials_and_survives_a_scheduler_restart(kiln):
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": EPOCHS, "hidden_size": 16, "batch_size": 32},
            "resources": {"max_minutes": 5},
            "sweep": {"method": "bayes", "max_runs": 12, "parallel": 3, "seed": 3,
                      "parameters": {"optimizer.lr": {"min": 1e-5, "max": 0.1, "distribution": "log_uniform"}},
                      "early_terminate": {"type": "asha", "min_iter": 1, "eta": 3}}}
    sweep = run_submit(user=kiln.project.owner_user, project=kiln.project, spec=spec).sweep
    wait_for(lambda: Run.objects.filter(sweep=sweep).count() >= 5, 180, "the sweep never made 5 trials", kiln.logs)
    scheduler = next(name for name in kiln.procs if name.startswith("scheduler"))
    kiln.stop(scheduler)
    kiln.start("scheduler")
    assert Run.objects.filter(sweep=sweep, state__in=(RunState.QUEUED, RunState.SCHEDULED, RunState.RUNNING)).count() <= 3
    wait_for(lambda: Sweep.objects.get(id=sweep.id).state == SweepState.FINISHED, 600, "the sweep never finished", kiln.logs)
    trials = list(Run.objects.filter(sweep=sweep))
    assert len(trials) == 12  # no trial lost or made twice across the restart
    states = [t.state for t in trials]
    failures = [(t.number, t.failure_reason, list(t.events.values_list("to_state", "reason"))) for t in trials
                if t.state == RunState.FAILED]
    assert RunState.STOPPED_EARLY in states and not failures, (states, failures)
    for trial in trials:
        if trial.state == RunState.STOPPED_EARLY:
            assert Metric.objects.filter(run=trial, key="val_accuracy").exists()  # its metrics are kept
    summary = sweep_summary(sweep)
    best = summary.best_run
    assert best is not None and Run.objects.get(id=best.id).state == RunState.SUCCEEDED
    assert Metric.objects.filter(run=best, key="val_accuracy").count() == EPOCHS  # fully trained, no epoch twice
