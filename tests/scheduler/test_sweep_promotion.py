"""ASHA's promotion variant, decided purely: rungs, pausing at a rung, promotion order (highest rung first,
the top floor(n / eta) of a rung), and the end of a sweep (best trial trained to max_iter, the rest stopped early)."""

from __future__ import annotations

import pytest

from scheduler.sweeps.policy import plan_sweep
from scheduler.sweeps.promotion import ASHA_RUNG, rung_iterations
from scheduler.sweeps.study import TrialRecord
from webapp.experiments.spec import EarlyTerminate, SpecError, SweepSpec, validate_spec


def _spec(**over) -> SweepSpec:
    early = {"type": "asha", "variant": "promotion", "min_iter": 1, "max_iter": 9, "eta": 3, **over.pop("early", {})}
    data = {"method": "random", "max_runs": 12, "parallel": 2, "metric": {"name": "val_accuracy", "goal": "maximize"},
            "parameters": {"lr": {"min": 1e-4, "max": 1e-1, "distribution": "log_uniform"}}, "early_terminate": early}
    return SweepSpec.model_validate({**data, **over})


def _trial(run_id, state, *, rung=0, reached=None, **values) -> TrialRecord:
    """A trial training toward `rung`, with `values` as {"r0": 0.5, ...}: its value at each rung it passed."""
    attrs = {f"completed_rung_{key[1:]}": value for key, value in values.items()}
    if rung:
        attrs[ASHA_RUNG] = rung
    return TrialRecord(run_id=run_id, number=run_id, params={"lr": 0.01}, state=state, curve={1: 0.0},
                       attrs=attrs, reached=reached)


def _plan(trials, *, state="running", max_runs=12, **over):
    return plan_sweep(_spec(**over), trials, study_name="s", state=state, max_runs=max_runs)


@pytest.mark.parametrize(("min_iter", "max_iter", "eta", "rungs"),
                         [(1, 9, 3, [1, 3]), (1, 27, 3, [1, 3, 9]), (2, 16, 2, [2, 4, 8]), (5, 5, 3, [])])
def test_rungs_are_min_iter_times_powers_of_eta_below_max_iter(min_iter, max_iter, eta, rungs):
    early = EarlyTerminate(type="asha", variant="promotion", min_iter=min_iter, max_iter=max_iter, eta=eta)
    assert rung_iterations(early) == rungs


def test_a_trial_reaching_its_rung_pauses_with_its_value_there_and_frees_its_slot():
    plan = _plan([_trial(0, "running", reached=0.6), _trial(1, "running")])
    assert plan.pause == {0: 0} and plan.stop_early == []
    assert plan.attrs[0]["completed_rung_0"] == 0.6
    assert len(plan.new_trials) == 1 and plan.promote == {}  # one result at rung 0: nothing to promote yet
    assert not plan.finished


def test_the_best_of_a_rungs_top_third_is_promoted_before_any_new_trial():
    trials = [_trial(0, "paused", r0=0.5), _trial(1, "paused", r0=0.9), _trial(2, "paused", r0=0.7)]
    plan = _plan(trials)
    assert plan.promote == {1: 1}  # floor(3 / 3) = 1: the best; the second slot starts a new trial
    assert plan.attrs[1][ASHA_RUNG] == 1
    assert len(plan.new_trials) == 1


def test_minimize_promotes_the_lowest_value():
    trials = [_trial(0, "paused", r0=0.5), _trial(1, "paused", r0=0.9), _trial(2, "paused", r0=0.7)]
    plan = _plan(trials, metric={"name": "val_loss", "goal": "minimize"})
    assert plan.promote == {0: 1}


def test_eta_sets_the_share_promoted():
    trials = [_trial(i, "paused", r0=v) for i, v in enumerate([0.1, 0.4, 0.3, 0.2])]
    plan = _plan(trials, early={"eta": 2}, parallel=4)
    assert plan.promote == {1: 1, 2: 1}  # floor(4 / 2) = 2
    assert len(plan.new_trials) == 2


def test_a_promoted_trial_is_not_promoted_again_and_counts_in_its_rungs_results():
    # trial 1 was the top third of rung 0 and is training toward rung 1: the next best waits for more results
    trials = [_trial(0, "paused", r0=0.5), _trial(1, "running", rung=1, r0=0.9), _trial(2, "paused", r0=0.7)]
    plan = _plan(trials)
    assert plan.promote == {}
    assert len(plan.new_trials) == 1
    six = trials + [_trial(i, "paused", r0=0.1) for i in range(3, 6)]
    assert _plan(six).promote == {2: 1}  # floor(6 / 3) = 2: trial 1 and now trial 2


def test_the_highest_rung_promotes_first():
    trials = [_trial(i, "paused", rung=1, r0=0.9, r1=v) for i, v in enumerate([0.95, 0.8, 0.85])]
    trials += [_trial(i, "paused", r0=0.1) for i in range(3, 9)]
    plan = _plan(trials, parallel=1)
    assert plan.promote == {0: 2}  # past the last rung: it now trains to max_iter
    assert plan.new_trials == []


def test_a_trial_past_the_last_rung_trains_to_the_end_without_pausing():
    plan = _plan([_trial(0, "running", rung=2, reached=0.9)])
    assert plan.pause == {} and plan.stop_early == []


def test_a_trial_that_trained_to_max_iter_before_its_rung_was_seen_is_not_paused_but_finishes():
    # toward rung 1 (epoch 3), but the controller first saw it at epoch 9 = max_iter (a scheduler restart)
    late = TrialRecord(**{**_trial(0, "running", rung=1, reached=0.9, r0=0.8).__dict__, "curve": {9: 0.97}})
    plan = _plan([late, _trial(1, "paused", r0=0.5)], max_runs=2)
    assert plan.pause == {} and plan.stop_early == [] and plan.promote == {}
    assert not plan.finished  # it is still running: it ends succeeded, fully trained
    short = TrialRecord(**{**late.__dict__, "curve": {8: 0.97}})  # past its rung, short of max_iter: it pauses
    assert _plan([short, _trial(1, "paused", r0=0.5)], max_runs=2).pause == {0: 1}


def test_a_diverged_trial_stops_at_its_rung():
    plan = _plan([_trial(0, "running", reached=float("nan"))])
    assert plan.stop_early == [0] and plan.pause == {}


def test_a_paused_sweep_promotes_and_starts_nothing_but_running_trials_still_pause():
    trials = [_trial(0, "running", reached=0.9)] + [_trial(i, "paused", r0=0.5) for i in range(1, 4)]
    plan = _plan(trials, state="paused")
    assert plan.pause == {0: 0} and plan.promote == {} and plan.new_trials == [] and plan.stop_early == []
    assert not plan.finished


def test_a_stopped_sweep_stops_its_paused_trials_early():
    trials = [_trial(0, "running", reached=0.9), _trial(1, "paused", r0=0.5), _trial(2, "running")]
    plan = _plan(trials, state="stopped")
    assert sorted(plan.stop_early) == [0, 1] and plan.pause == {} and plan.promote == {}
    assert not plan.finished  # trial 2 still runs


def test_at_the_end_the_best_paused_trial_of_the_highest_rung_is_trained_to_max_iter():
    # max_runs made, nothing active, floor(2 / 3) = 0 at rung 1: without the end rule nobody would finish
    trials = [_trial(0, "paused", rung=1, r0=0.9, r1=0.91), _trial(1, "paused", rung=1, r0=0.8, r1=0.95),
              _trial(2, "paused", r0=0.7), _trial(3, "stopped_early", r0=0.1)]
    plan = _plan(trials, max_runs=4)
    assert plan.promote == {1: 2} and plan.stop_early == [] and plan.new_trials == []
    assert not plan.finished


def test_the_end_of_a_sweep_stops_its_paused_trials_once_one_is_fully_trained():
    trials = [_trial(0, "succeeded", rung=2, r0=0.9, r1=0.95), _trial(1, "paused", rung=1, r0=0.8, r1=0.9),
              _trial(2, "paused", r0=0.7), _trial(3, "paused", r0=0.1)]
    plan = _plan(trials, max_runs=4)
    assert sorted(plan.stop_early) == [1, 2, 3] and plan.promote == {}
    assert plan.finished  # in the same step: nothing is left to run


def test_paused_trials_wait_while_others_run_at_the_end():
    trials = [_trial(0, "running", rung=1, r0=0.9), _trial(1, "paused", r0=0.8), _trial(2, "paused", r0=0.7)]
    plan = _plan(trials, max_runs=3)
    assert plan.promote == {} and plan.stop_early == [] and not plan.finished


def test_the_same_rows_give_the_same_plan_so_a_restart_duplicates_nothing():
    trials = [_trial(0, "paused", r0=0.5), _trial(1, "paused", r0=0.9), _trial(2, "running", reached=0.7)]
    one, two = _plan(trials), _plan(trials)
    assert (one.pause, one.promote, [t.params for t in one.new_trials]) == \
        (two.pause, two.promote, [t.params for t in two.new_trials])


@pytest.mark.parametrize(("early", "message"), [
    ({"type": "asha", "variant": "promotion"}, "variant promotion needs max_iter"),
    ({"type": "hyperband", "variant": "promotion", "max_iter": 9}, "it needs type asha"),
    ({"type": "asha", "variant": "promote", "max_iter": 9}, "'stopping' or 'promotion'"),
])
def test_the_spec_names_the_field_of_a_bad_variant(early, message):
    spec = {"recipe": {"model": "mlp", "dataset": "blobs"},
            "sweep": {"method": "random", "parameters": {"optimizer.lr": {"min": 0.001, "max": 0.1}}, "early_terminate": early}}
    with pytest.raises(SpecError) as caught:
        validate_spec(spec, has_code=False)
    fields = {error["field"]: error["message"] for error in caught.value.errors}
    assert any(field.startswith("sweep.early_terminate") and message in text for field, text in fields.items()), fields


def test_a_paused_trial_is_promoted_only_once_its_job_stored_its_last_results():
    trials = [_trial(0, "paused", r0=0.5), _trial(2, "paused", r0=0.7),
              TrialRecord(**{**_trial(1, "paused", r0=0.9).__dict__, "attempt_over": False})]
    plan = _plan(trials, max_runs=3)
    assert plan.promote == {} and plan.stop_early == [] and not plan.finished  # the end waits for it too
    assert _plan([*trials[:2], _trial(1, "paused", r0=0.9)], max_runs=3).promote == {1: 1}


def test_a_trial_paused_this_tick_waits_for_its_job_to_end_before_a_promotion():
    trials = [_trial(0, "paused", r0=0.5), _trial(1, "running", reached=0.9), _trial(2, "paused", r0=0.7)]
    plan = _plan(trials)
    assert plan.pause == {1: 0} and plan.promote == {}


def test_trials_that_trained_past_a_rung_without_pausing_count_among_its_results():
    # rungs at epochs 1 and 3; two fast trials finished all 9 epochs before the controller could pause them
    fast = [TrialRecord(run_id=i, number=i, params={"lr": 0.01}, state="succeeded",
                        curve={e: 0.5 + 0.01 * e + 0.1 * i for e in range(1, 10)}) for i in (0, 1)]
    paused = _trial(2, "paused", rung=1, r0=0.7, r1=0.99)  # the best value anyone had at epoch 3
    plan = _plan([*fast, paused], max_runs=3)
    assert plan.promote == {2: 2}  # floor(3 / 3) = 1 at rung 1: the paused trial is that one, so it trains on
    assert plan.stop_early == []
    weaker = _trial(2, "paused", rung=1, r0=0.3, r1=0.1)
    plan = _plan([*fast, weaker], max_runs=3)
    assert plan.promote == {} and plan.stop_early == [2]  # not in a rung's top third: it stays stopped
