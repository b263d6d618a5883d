"""Config diff, run facts, best so far, and the compare state that URLs and dashboards carry."""

import pytest
from django.http import QueryDict
from django.utils import timezone

from webapp.dashboards.compare import best_so_far, config_diff, runs_meta
from webapp.dashboards.selectors import compare_runs, metric_keys
from webapp.dashboards.state import CompareState, StateError, state_from_query
from webapp.experiments.models import Run

pytestmark = pytest.mark.django_db


def test_config_diff_marks_only_the_keys_that_differ(world):
    rows = {row.key: row for row in config_diff(world.runs)}
    assert rows["optimizer.lr"].differs and rows["optimizer.lr"].values == ["0.1", "0.01", "0.001"]
    assert not rows["model"].differs and rows["model"].values == ["mlp", "mlp", "mlp"]
    assert [row.key for row in config_diff(world.runs) if row.differs] == ["optimizer.lr"]


def test_config_diff_shows_a_missing_key_as_blank_and_differing(world):
    first, second = world.runs[:2]
    first.params = {**first.params, "extra": {"a": 1}}
    rows = {row.key: row for row in config_diff([first, second])}
    assert rows["extra"].values == ['{"a": 1}', ""] and rows["extra"].differs


def test_runs_meta_carries_params_and_last_min_max(world):
    meta = {info["id"]: info for info in runs_meta(world.runs)}
    loss = meta[world.runs[0].id]["summary"]["loss"]
    assert loss["max"] == 2.0 and loss["count"] == 50 and loss["last_step"] == 49
    assert meta[world.runs[0].id]["params"]["optimizer.lr"] == 0.1 and meta[world.runs[0].id]["final"]


def test_best_so_far_follows_the_order_the_search_made_the_runs_not_when_they_finished(world):
    first, second, third = world.sweep_runs
    Run.objects.filter(id=first.id).update(finished_at=timezone.now())  # as a paused trial ends with its sweep
    progress = best_so_far(runs_meta(list(Run.objects.filter(sweep=world.sweep))), "loss", "min")
    assert [p["number"] for p in progress] == [first.number, second.number, third.number]
    assert [p["value"] for p in progress] == [1.5, 0.5, 0.9]
    assert [p["best"] for p in progress] == [1.5, 0.5, 0.5]
    assert [p["best"] for p in best_so_far(runs_meta(world.sweep_runs), "loss", "max")] == [2.5, 2.5, 2.5]


def test_compare_runs_by_ids_or_sweep_and_refuses_runs_of_other_projects(world):
    assert compare_runs(world.project, CompareState(runs=(world.runs[1].id,))) == [world.runs[1]]
    assert [run.id for run in compare_runs(world.project, CompareState(sweep=world.sweep.id))] == [r.id for r in world.sweep_runs]
    with pytest.raises(StateError, match="not in this project"):
        compare_runs(world.project, CompareState(runs=(world.runs[0].id, 999_999)))
    assert metric_keys(world.runs) == ["epoch", "loss"]


def test_state_round_trips_through_the_url_and_json():
    query = QueryDict("runs=3,4,9&key=loss&key=val/acc&x=metric:epoch&smooth=0.6&log=1&group=lr&best=loss&mode=max&sx=lr&sy=loss"
                      "&hide=run-4&hide=group-0.1")
    state = state_from_query(query)
    assert state == CompareState(runs=(3, 4, 9), keys=("loss", "val/acc"), x="metric:epoch", smooth=0.6, log=True,
                                 group="lr", best="loss", mode="max", sx="lr", sy="loss", hide=("run-4", "group-0.1"))
    assert state_from_query(QueryDict(state.as_query())) == state
    assert state_from_query(state.as_json()) == state


@pytest.mark.parametrize(("query", "message"), [
    ("runs=1,x", "runs must be run ids"),
    ("x=epoch", "x must be step"),
    ("smooth=2", "smooth must be"),
    ("mode=best", "mode must be"),
    ("sweep=-1", "sweep must be"),
    ("hide=4", "hide='4' must be a legend entry: run-<id> or group-<value>"),
    ("hide=run-x", "must be a legend entry"),
])
def test_bad_state_names_the_parameter(query, message):
    with pytest.raises(StateError, match=message):
        state_from_query(QueryDict(query))


def test_saved_state_overrides_only_what_the_url_sets():
    saved = CompareState(runs=(1, 2), keys=("loss",), smooth=0.5)
    merged = saved.merged(QueryDict("x=rel&log=1"))
    assert merged == CompareState(runs=(1, 2), keys=("loss",), smooth=0.5, x="rel", log=True)
    assert saved.merged(QueryDict("hide=run-2")) == CompareState(runs=(1, 2), keys=("loss",), smooth=0.5, hide=("run-2",))
