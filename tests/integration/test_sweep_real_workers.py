"""ASHA sweeps on a recipe with the real `kiln scheduler` and `kiln worker`. Stopping: trials are made as
slots free, weak ones are stopped early (their metrics kept), the best one trains to the end. Promotion
(12 trials, as the sweep issue asks): trials pause at rungs, the best resume from their checkpoints with
no epoch run twice, the rest end stopped early and the best by the objective is trained to max_iter. In
both a scheduler restart in the middle loses and duplicates nothing. A promotion trial's job waits at its
rung for the controller (`engine.track.rung`), so none trains past a rung before it pauses."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from cluster import wait_for

from webapp.experiments.models import (
    Artifact,
    Metric,
    MetricResume,
    Run,
    RunEvent,
    RunState,
    SupersededMetric,
    Sweep,
    SweepState,
)
from webapp.experiments.submit import SWEEP_POINT, run_submit
from webapp.experiments.sweeps import sweep_summary

pytestmark = pytest.mark.slow
EPOCHS = 9


def test_an_asha_sweep_stops_weak_trials_and_survives_a_scheduler_restart(kiln):
    # ~0.3 s epochs (batch_size 1): scheduler ticks see each rung, however loaded the machine (with
    # epochs shorter than a tick a trial can end before the controller sees it running); val_loss never ties
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": EPOCHS, "hidden_size": 16, "layers": 1,
                       "batch_size": 1},
            "resources": {"max_minutes": 5},
            "sweep": {"method": "bayes", "max_runs": 12, "parallel": 3, "seed": 3,
                      "metric": {"name": "val_loss", "goal": "minimize"},
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
            assert Metric.objects.filter(run=trial, key="val_loss").exists()  # its metrics are kept
    summary = sweep_summary(sweep)
    best = summary.best_run
    assert best is not None and Run.objects.get(id=best.id).state == RunState.SUCCEEDED
    assert Metric.objects.filter(run=best, key="val_loss").count() == EPOCHS  # fully trained, no epoch twice


PROMOTION_EPOCHS = 8  # max_iter: rungs at epochs 1 and 4 (eta 4)
TRIALS = 12  # rung 0 promotes the top floor(n / 4) of its n results, rung 1 the top quarter of those (or, at the
# end, its best: a sweep ends with its best trial trained to max_iter)


def test_a_12_trial_asha_promotion_sweep_resumes_paused_trials_and_survives_a_scheduler_restart(kiln):
    # ~0.6 s epochs (batch_size 1, one hidden layer): shorter than a pause takes to reach the job, which waits for it
    spec = {"recipe": {"model": "mlp", "dataset": "blobs", "epochs": PROMOTION_EPOCHS, "hidden_size": 16, "layers": 1,
                       "batch_size": 1},
            "resources": {"max_minutes": 5},
            "sweep": {"method": "random", "max_runs": TRIALS, "parallel": 2, "seed": 5,
                      "metric": {"name": "val_loss", "goal": "minimize"},
                      "parameters": {"optimizer.lr": {"min": 1e-4, "max": 0.3, "distribution": "log_uniform"}},
                      "early_terminate": {"type": "asha", "variant": "promotion", "min_iter": 1,
                                          "max_iter": PROMOTION_EPOCHS, "eta": 4}}}
    sweep = run_submit(user=kiln.project.owner_user, project=kiln.project, spec=spec).sweep
    wait_for(lambda: RunEvent.objects.filter(run__sweep=sweep, to_state=RunState.PAUSED).count() >= 4, 180,
             "no four trials ever paused at a rung", kiln.logs)
    scheduler = next(name for name in kiln.procs if name.startswith("scheduler"))
    kiln.stop(scheduler)  # mid-sweep: trials paused, running and not yet made
    made = Run.objects.filter(sweep=sweep).count()
    assert 0 < made < TRIALS, made
    kiln.start("scheduler")
    wait_for(lambda: Sweep.objects.get(id=sweep.id).state == SweepState.FINISHED, 300, "the sweep never finished", kiln.logs)

    trials = list(Run.objects.filter(sweep=sweep).order_by("number"))
    assert len(trials) == TRIALS  # no trial lost or made twice across the restart
    assert len({t.number for t in trials}) == TRIALS
    points = [json.dumps(t.spec[SWEEP_POINT], sort_keys=True) for t in trials]
    assert len(set(points)) == TRIALS, points  # no point sampled twice
    failures = [(t.number, t.state, t.failure_reason) for t in trials
                if t.state not in (RunState.SUCCEEDED, RunState.STOPPED_EARLY)]
    assert not failures, failures
    assert sum(t.state == RunState.STOPPED_EARLY for t in trials) >= TRIALS // 2  # most stopped at a rung

    for trial in trials:  # each epoch's validation stored once, in order: no epoch ran twice
        rows = list(Metric.objects.filter(run=trial, key__in=("epoch", "val_loss")).order_by("step", "key")
                    .values_list("step", "key", "value"))
        epochs = [int(value) for _, key, value in rows if key == "epoch"]
        assert epochs == list(range(1, len(epochs) + 1)), (trial.number, epochs)
        assert Counter(step for step, _, _ in rows) == {step: 2 for step, key, _ in rows if key == "epoch"}, (
            trial.number, rows)  # per epoch's step: one epoch row and one val_loss row, nothing else
        assert not SupersededMetric.objects.filter(run=trial, key__in=("epoch", "val_loss")).exists(), trial.number

    rungs = [1, 4]  # attempt k of a trial trains toward rung k - 1 (a promotion is one more attempt)
    for trial in trials:  # each job waited at its rung: no attempt trained past the rung it paused or stopped at
        steps = list(Metric.objects.filter(run=trial, key="epoch").order_by("step").values_list("step", flat=True))
        resumed_after = dict(MetricResume.objects.filter(run=trial).values_list("attempt", "after_step"))
        for ended in RunEvent.objects.filter(run=trial, from_state=RunState.RUNNING):
            assert ended.to_state in (RunState.PAUSED, RunState.STOPPED_EARLY, RunState.SUCCEEDED), (
                trial.number, ended.to_state, ended.reason)
            if ended.to_state == RunState.SUCCEEDED:  # trained to max_iter (checked below for the best)
                continue
            rung = ended.attempt - 1
            assert rung < len(rungs), (trial.number, ended.attempt, ended.reason)
            if ended.to_state == RunState.PAUSED:
                assert f"at rung {rung} (epoch {rungs[rung]})" in ended.reason, (trial.number, ended.reason)
            after = resumed_after.get(ended.attempt + 1)  # where its next attempt resumed, if it had one
            epochs_done = sum(1 for step in steps if after is None or step <= after)
            assert epochs_done == rungs[rung], (trial.number, ended.attempt, ended.reason, epochs_done)
        log = list(trial.log_lines.values_list("text", flat=True))
        assert any("reached rung 0 (epoch 1): waits for the sweep controller" in line for line in log), trial.number
        assert not any("no word from the sweep controller" in line for line in log), trial.number  # none gave up

    promoted = [t for t in trials if RunEvent.objects.filter(run=t, from_state=RunState.PAUSED, to_state=RunState.QUEUED).exists()]
    assert promoted, "no paused trial was promoted"
    for trial in promoted:  # each later attempt picked up after a checkpoint the trial had stored: none started over
        later = list(MetricResume.objects.filter(run=trial).order_by("attempt").values_list("after_step", flat=True))[1:]
        checkpoints = set(Artifact.objects.filter(run=trial, kind="checkpoint").values_list("step", flat=True))
        assert later and all(step in checkpoints for step in later), (trial.number, later, sorted(checkpoints))

    best = sweep_summary(sweep).best_run
    losses = {t.id: list(Metric.objects.filter(run=t, key="val_loss", value__isnull=False).values_list("value", flat=True))
              for t in trials}
    lowest = {run_id: min(values) for run_id, values in losses.items() if values}  # the objective's best, from the rows
    assert best is not None and best.id == min(lowest, key=lambda run_id: (lowest[run_id], -run_id))
    assert Run.objects.get(id=best.id).state == RunState.SUCCEEDED
    assert Metric.objects.filter(run=best, key="val_loss").count() == PROMOTION_EPOCHS  # fully trained
    trained = Metric.objects.filter(run__sweep=sweep, key="val_loss").count()
    attempts = RunEvent.objects.filter(run__sweep=sweep, to_state=RunState.RUNNING).count()
    print(f"promotion sweep: {trained} of {TRIALS * PROMOTION_EPOCHS} epochs trained in {attempts} attempts, "
          f"{len(promoted)} trials resumed, restart after {made} trials")
    assert trained < 0.5 * TRIALS * PROMOTION_EPOCHS, trained  # most trials stopped at a rung
