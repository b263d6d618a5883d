"""Sweep specs for bayes/cmaes, metric, parallel and early_terminate: errors name the field."""

from __future__ import annotations

import pytest

from webapp.experiments.spec import SpecError, expand_points, validate_spec


def _errors(data, *, has_code=False):
    with pytest.raises(SpecError) as caught:
        validate_spec(data, has_code=has_code)
    return {e["field"]: e["message"] for e in caught.value.errors}


def _sweep(**sweep):
    return {"recipe": {"model": "mlp"}, "sweep": {"method": "bayes", "parameters": {"optimizer.lr": {"min": 1e-4, "max": 0.1}}, **sweep}}


@pytest.mark.parametrize(("sweep", "field", "words"), [
    ({"method": "annealing"}, "sweep.method", "Input should be"),
    ({"metric": {"name": "val_loss"}}, "sweep.metric.goal", "Field required"),
    ({"metric": {"name": "val_loss", "goal": "lowest"}}, "sweep.metric.goal", "minimize"),
    ({"parallel": 0}, "sweep.parallel", "must be >= 1"),
    ({"parallel": 101}, "sweep.parallel", "must be <= 100"),
    ({"early_terminate": {"type": "median"}}, "sweep.early_terminate.type", "asha"),
    ({"early_terminate": {"type": "hyperband"}}, "sweep.early_terminate", "hyperband needs max_iter"),
    ({"early_terminate": {"type": "asha", "min_iter": 4, "max_iter": 2}}, "sweep.early_terminate", "max_iter must not be less"),
    ({"early_terminate": {"type": "asha", "eta": 1}}, "sweep.early_terminate.eta", "must be >= 2"),
    ({"early_terminate": {"type": "asha", "iteration": "batch"}}, "sweep.early_terminate.iteration", "epoch"),
    ({"early_terminate": {"type": "asha", "grace": 1}}, "sweep.early_terminate.grace", "unknown field"),
    ({"method": "cmaes", "parameters": {"layers": {"values": [1, 2]}}}, "sweep", "cmaes searches numeric ranges"),
    ({"parameters": {"layers": {"distribution": "categorical", "min": 1, "max": 3}}}, "sweep.parameters.layers", "categorical needs values"),
    ({"parameters": {"layers": {"distribution": "int_uniform", "min": 1.2, "max": 1.8}}}, "sweep.parameters.layers", "whole number"),
])
def test_bad_adaptive_sweeps_name_their_field(sweep, field, words):
    errors = _errors(_sweep(**sweep))
    assert field in errors, errors
    assert words in errors[field]


def test_a_range_outside_the_recipe_field_is_refused_before_any_trial():
    errors = _errors(_sweep(parameters={"dropout": {"min": 0.0, "max": 1.5}}))
    assert "sweep.parameters.recipe.dropout" in errors  # the field as the point sets it


def test_a_parameter_that_is_not_a_recipe_field_is_refused():
    assert _errors(_sweep(parameters={"optimizer.nope": {"min": 0.1, "max": 0.2}})) == {
        "sweep.parameters.optimizer.nope": "is not a recipe field"}


def test_a_code_run_bayes_sweep_needs_its_metric():
    errors = _errors({"params": {}, "sweep": {"method": "bayes", "parameters": {"lr": {"min": 0.1, "max": 1}}}}, has_code=True)
    assert "needs its objective" in errors["sweep.metric"]


def test_recipes_default_to_their_validation_metric():
    classify = validate_spec(_sweep(), has_code=False)
    assert classify.sweep.metric.model_dump() == {"name": "val_accuracy", "goal": "maximize"}
    regress = validate_spec({**_sweep(), "recipe": {"model": "mlp", "dataset": "regression"}}, has_code=False)
    assert regress.sweep.metric.model_dump() == {"name": "val_loss", "goal": "minimize"}
    grid = validate_spec({"recipe": {"model": "mlp"}, "sweep": {"parameters": {"layers": {"values": [1, 2]}}}}, has_code=False)
    assert grid.sweep.metric.name == "val_accuracy" and not grid.sweep.controlled  # grid/random name it too


def test_controlled_sweeps_expand_at_submit_to_nothing_and_grid_still_expands():
    spec = validate_spec(_sweep(early_terminate={"type": "asha"}), has_code=False)
    assert spec.sweep.controlled and expand_points(spec) == []
    random_with_parallel = validate_spec(_sweep(method="random", parallel=2), has_code=False)
    assert random_with_parallel.sweep.controlled
    grid = validate_spec({"recipe": {"model": "mlp"}, "sweep": {"parameters": {"layers": {"values": [1, 2, 3]}}}},
                         has_code=False)
    assert [p["layers"] for p in expand_points(grid)] == [1, 2, 3]
