"""The sweep controller's pure policy: slots, max_runs, pausing, successive-halving decisions, restarts."""

from __future__ import annotations

import pytest

from scheduler.sweeps.policy import plan_sweep
from scheduler.sweeps.study import MIN_TRIALS_FOR_IMPORTANCE, TrialRecord, param_importances
from webapp.experiments.spec import SweepSpec


def _spec(**over) -> SweepSpec:
    data = {"method": "bayes", "max_runs": 6, "parallel": 2, "metric": {"name": "val_loss", "goal": "minimize"},
            "parameters": {"lr": {"min": 1e-4, "max": 1e-1, "distribution": "log_uniform"}, "layers": {"values": [1, 2, 3]}}}
    return SweepSpec.model_validate({**data, **over})


def _records(plan_points, state="running", curves=None, start=0):
    return [TrialRecord(run_id=100 + start + i, number=start + i, params=point, state=state,
                        curve=(curves[i] if curves else {}))
            for i, point in enumerate(plan_points)]


def test_fills_free_slots_only_and_points_lie_in_the_space():
    plan = plan_sweep(_spec(), [], study_name="s", state="running", max_runs=6)
    assert len(plan.new_trials) == 2
    for trial in plan.new_trials:
        assert 1e-4 <= trial.params["lr"] <= 1e-1 and trial.params["layers"] in (1, 2, 3)
    running = _records([t.params for t in plan.new_trials])
    assert plan_sweep(_spec(), running, study_name="s", state="running", max_runs=6).new_trials == []


def test_a_freed_slot_gets_one_new_point_and_max_runs_caps_the_total():
    first = plan_sweep(_spec(), [], study_name="s", state="running", max_runs=3).new_trials
    records = _records([t.params for t in first])
    records[0] = TrialRecord(run_id=100, number=0, params=first[0].params, state="succeeded", curve={3: 0.2}, value=0.2)
    assert len(plan_sweep(_spec(), records, study_name="s", state="running", max_runs=3).new_trials) == 1
    done = records + _records([first[1].params], state="running", start=2)
    assert plan_sweep(_spec(), done, study_name="s", state="running", max_runs=3).new_trials == []


def test_the_same_rows_give_the_same_points_so_a_restart_duplicates_nothing():
    records = [TrialRecord(run_id=1, number=0, params={"lr": 0.01, "layers": 2}, state="succeeded", value=0.5)]
    one = plan_sweep(_spec(), records, study_name="s", state="running", max_runs=6).new_trials
    two = plan_sweep(_spec(), records, study_name="s", state="running", max_runs=6).new_trials
    assert [t.params for t in one] == [t.params for t in two]
    assert len({(t.params["lr"], t.params["layers"]) for t in one}) == 2  # parallel trials differ


@pytest.mark.parametrize("state", ["paused", "stopped"])
def test_paused_or_stopped_makes_nothing(state):
    plan = plan_sweep(_spec(), [], study_name="s", state=state, max_runs=6)
    assert plan.new_trials == []
    assert plan.finished == (state == "stopped")


def test_paused_sweep_with_trials_left_is_not_finished_and_a_full_one_is():
    records = [TrialRecord(run_id=1, number=0, params={"lr": 0.01, "layers": 2}, state="succeeded", value=0.5)]
    assert not plan_sweep(_spec(), records, study_name="s", state="paused", max_runs=6).finished
    assert plan_sweep(_spec(), records, study_name="s", state="running", max_runs=1).finished


def test_asha_stops_the_weak_trial_at_its_rung_and_records_rung_values():
    spec = _spec(parallel=4, max_runs=4, early_terminate={"type": "asha", "min_iter": 1, "eta": 2})
    points = [{"lr": 0.01, "layers": n} for n in (1, 2, 3)]
    # three trials reached iteration 1: losses 0.1, 0.2 already recorded at rung 0; the third reports 0.9
    records = [
        TrialRecord(run_id=1, number=0, params=points[0], state="running", curve={1: 0.1}, attrs={"completed_rung_0": 0.1}),
        TrialRecord(run_id=2, number=1, params=points[1], state="running", curve={1: 0.2}, attrs={"completed_rung_0": 0.2}),
        TrialRecord(run_id=3, number=2, params=points[2], state="running", curve={1: 0.9}),
    ]
    plan = plan_sweep(spec, records, study_name="s", state="running", max_runs=4)
    assert plan.stop_early == [3]
    assert plan.attrs == {3: {"completed_rung_0": 0.9}}
    assert len(plan.new_trials) == 1  # its slot is free again


def test_asha_does_not_stop_a_trial_the_controller_first_sees_at_max_iter():
    # epochs shorter than a tick: the weak trial's rung value arrives with its last epoch; it has finished
    spec = _spec(parallel=4, max_runs=4, early_terminate={"type": "asha", "min_iter": 1, "eta": 2, "max_iter": 4})
    points = [{"lr": 0.01, "layers": n} for n in (1, 2, 3)]
    records = [
        TrialRecord(run_id=1, number=0, params=points[0], state="running", curve={1: 0.1}, attrs={"completed_rung_0": 0.1}),
        TrialRecord(run_id=2, number=1, params=points[1], state="running", curve={1: 0.2}, attrs={"completed_rung_0": 0.2}),
        TrialRecord(run_id=3, number=2, params=points[2], state="running", curve={1: 0.9, 2: 0.9, 3: 0.9, 4: 0.9}),
    ]
    assert plan_sweep(spec, records, study_name="s", state="running", max_runs=4).stop_early == []
    records[2] = TrialRecord(run_id=3, number=2, params=points[2], state="running", curve={1: 0.9, 2: 0.9})
    assert plan_sweep(spec, records, study_name="s", state="running", max_runs=4).stop_early == [3]


def test_asha_keeps_a_good_trial_and_does_not_recheck_a_passed_rung():
    spec = _spec(parallel=4, max_runs=3, early_terminate={"type": "asha", "min_iter": 1, "eta": 2})
    records = [
        TrialRecord(run_id=1, number=0, params={"lr": 0.01, "layers": 1}, state="succeeded", curve={4: 0.5}, value=0.5,
                    attrs={"completed_rung_0": 0.8}),
        TrialRecord(run_id=2, number=1, params={"lr": 0.02, "layers": 1}, state="running", curve={1: 0.3}),
        # passed rung 0 earlier; now at iteration 1 still: no rung is due
        TrialRecord(run_id=3, number=2, params={"lr": 0.03, "layers": 1}, state="running", curve={1: 5.0},
                    attrs={"completed_rung_0": 0.7}),
    ]
    plan = plan_sweep(spec, records, study_name="s", state="running", max_runs=3)
    assert plan.stop_early == []
    assert plan.attrs == {2: {"completed_rung_0": 0.3}}


def test_a_diverged_trial_is_stopped():
    spec = _spec(early_terminate={"type": "asha"})
    records = [TrialRecord(run_id=1, number=0, params={"lr": 0.01, "layers": 1}, state="running", curve={1: float("nan")})]
    assert plan_sweep(spec, records, study_name="s", state="running", max_runs=6).stop_early == [1]


@pytest.mark.parametrize("method", ["grid", "random", "cmaes"])
def test_other_samplers_make_points_in_the_space(method):
    params = {"lr": {"values": [0.1, 0.01]}, "layers": {"values": [1, 2]}} if method == "grid" else \
        {"lr": {"min": 0.001, "max": 0.1}, "layers": {"min": 1, "max": 4, "distribution": "int_uniform"}}
    spec = _spec(method=method, parameters=params, parallel=10, max_runs=10)
    plan = plan_sweep(spec, [], study_name="s", state="running", max_runs=10)
    if method == "grid":
        assert sorted((t.params["lr"], t.params["layers"]) for t in plan.new_trials) == \
            [(0.01, 1), (0.01, 2), (0.1, 1), (0.1, 2)]  # each cell once, no more than the grid holds
    else:
        assert len(plan.new_trials) == 10
        assert all(0.001 <= t.params["lr"] <= 0.1 and 1 <= t.params["layers"] <= 4 for t in plan.new_trials)


def test_hyperband_decides_with_its_brackets():
    spec = _spec(parallel=8, max_runs=8, early_terminate={"type": "hyperband", "min_iter": 1, "max_iter": 9, "eta": 3})
    records = [TrialRecord(run_id=i, number=i, params={"lr": 0.01, "layers": 1}, state="running",
                           curve={3: float(i)}) for i in range(8)]
    plan = plan_sweep(spec, records, study_name="s", state="running", max_runs=8)
    assert plan.stop_early  # some of the worse trials stop
    assert 0 not in plan.stop_early  # never the best one


def test_importance_counts_trials_stopped_early_with_the_best_value_they_reached():
    # under ASHA most trials end stopped early: they count, or importance would rarely be shown
    points = [{"lr": lr, "layers": layers} for lr, layers in ((1e-4, 1), (1e-3, 2), (1e-2, 3), (3e-2, 1), (5e-2, 2))]
    values = [0.9, 0.7, 0.4, 0.3, 0.2]  # val_loss falls as lr rises; layers says nothing
    records = [TrialRecord(run_id=100 + i, number=i, params=point, state="stopped_early", curve={1: value}, value=value)
               for i, (point, value) in enumerate(zip(points, values, strict=True))]
    assert param_importances(_spec(), records[:MIN_TRIALS_FOR_IMPORTANCE - 1]) == {}
    importance = param_importances(_spec(), records)
    assert set(importance) == {"lr", "layers"} and importance["lr"] > importance["layers"]
    failed = [TrialRecord(run_id=200 + i, number=10 + i, params=point, state="failed", value=0.1)
              for i, point in enumerate(points)]
    assert param_importances(_spec(), failed) == {}  # a failed trial's values say nothing
