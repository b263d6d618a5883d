"""ASHA sweeps on a recipe with the real `kiln scheduler` and `kiln worker`. Stopping: trials are made as
slots free, weak ones are stopped early (their metrics kept), the best one trains to the end. Promotion:
trials pause at rungs and the best resume from their checkpoints, no epoch run twice. In both a
scheduler restart in the middle loses and duplicates nothing."""

from __future__ import annotations

import pytest
from cluster import wait_for

from webapp.experiments.models import (
    Metric,
    MetricResume,
    Run,
    RunEvent,
    RunState,
    SupersededMetric,
    Sweep,
    SweepState,
)
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


PROMOTION_EPOCHS = 9  # max_iter: rungs at epochs 1 and 3 (eta 3)
TRIALS = 5  # rung 0 promotes floor(5 / 3) = 1; at the end the best of rung 1 trains to max_iter


def test_an_asha_promotion_sweep_pauses_trials_and_resumes_the_best_from_their_checkpoints(kiln):
    # ~1 s epochs (batch_size 1): longer than it takes a pause to reach the job, as real epochs are
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": PROMOTION_EPOCHS, "hidden_size": 16, "batch_size": 1},
            "resources": {"max_minutes": 5},
            "sweep": {"method": "random", "max_runs": TRIALS, "parallel": 2, "seed": 5,
                      "metric": {"name": "val_loss", "goal": "minimize"},
                      "parameters": {"optimizer.lr": {"min": 1e-4, "max": 0.3, "distribution": "log_uniform"}},
                      "early_terminate": {"type": "asha", "variant": "promotion", "min_iter": 1,
                                          "max_iter": PROMOTION_EPOCHS, "eta": 3}}}
    sweep = run_submit(user=kiln.project.owner_user, project=kiln.project, spec=spec).sweep
    wait_for(lambda: RunEvent.objects.filter(run__sweep=sweep, to_state=RunState.PAUSED).count() >= 2, 120,
             "no two trials ever paused at a rung", kiln.logs)
    scheduler = next(name for name in kiln.procs if name.startswith("scheduler"))
    kiln.stop(scheduler)
    kiln.start("scheduler")
    wait_for(lambda: Sweep.objects.get(id=sweep.id).state == SweepState.FINISHED, 240, "the sweep never finished", kiln.logs)
    trials = list(Run.objects.filter(sweep=sweep))
    assert len(trials) == TRIALS  # no trial lost or made twice across the restart
    failures = [(t.number, t.failure_reason) for t in trials if t.state not in (RunState.SUCCEEDED, RunState.STOPPED_EARLY)]
    assert not failures, failures
    resumed = [t for t in trials if MetricResume.objects.filter(run=t, after_step__isnull=False).exists()]
    assert resumed, "no paused trial was resumed from its checkpoint"
    for trial in trials:  # each epoch's validation stored once, in order: no epoch ran twice
        epochs = list(Metric.objects.filter(run=trial, key="epoch").order_by("step").values_list("value", flat=True))
        assert epochs == list(range(1, len(epochs) + 1)), (trial.number, epochs)
        assert not SupersededMetric.objects.filter(run=trial, key="val_loss").exists()
    for trial in resumed:
        assert RunEvent.objects.filter(run=trial, from_state=RunState.PAUSED, to_state=RunState.QUEUED).exists()
    best = sweep_summary(sweep).best_run
    assert best is not None and Run.objects.get(id=best.id).state == RunState.SUCCEEDED
    assert Metric.objects.filter(run=best, key="val_loss").count() == PROMOTION_EPOCHS  # fully trained
    trained = Metric.objects.filter(run__sweep=sweep, key="val_loss").count()
    print(f"promotion sweep: {trained} of {TRIALS * PROMOTION_EPOCHS} epochs trained")
    assert trained < 0.7 * TRIALS * PROMOTION_EPOCHS, trained  # most trials stopped at a rung
