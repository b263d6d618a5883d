"""Recipes are checked before any work: bad fields and model/dataset pairs that make no sense fail clearly."""

from __future__ import annotations

import typing

import pytest

from webapp.experiments.spec import LRSchedulerSpec, OptimizerSpec, RecipeSpec, flat_params, validate_spec
from worker.recipes import Recipe, RecipeError, parse_recipe, run_recipe
from worker.recipes.config import DATASETS, MODELS, OPTIMIZERS, SCHEDULERS


@pytest.mark.parametrize(("model", "dataset", "hint"), [
    ("cnn", "text", "for text use lstm or gpt"),
    ("cnn", "spirals", "for spirals use mlp"),
    ("gpt", "digits", "for digits use mlp or cnn or lstm"),
    ("mlp", "text", "for text use lstm or gpt"),
    ("lstm", "blobs", "for blobs use mlp"),
    ("gpt", "regression", "for regression use mlp"),
])
def test_senseless_pairs_fail_fast_and_say_what_fits(model, dataset, hint, local_run):
    with pytest.raises(RecipeError, match=f"model '{model}' can't train on dataset '{dataset}'.*{hint}"):
        run_recipe({"model": model, "dataset": dataset})


@pytest.mark.parametrize(("recipe", "message"), [
    ({}, "recipe.model: required"),
    ({"model": "resnet"}, "recipe.model: must be one of mlp, cnn, lstm, gpt, got 'resnet'"),
    ({"model": "mlp", "epocs": 3}, "recipe.epocs: unknown field"),
    ({"model": "mlp", "optimizer": {"name": "lbfgs"}}, "recipe.optimizer.name: must be one of"),
    ({"model": "mlp", "optimizer": {"lr": 0}}, r"recipe.optimizer.lr: must be in \(0, 10\], got 0.0"),
    ({"model": "mlp", "optimizer": {"lr": "fast"}}, "recipe.optimizer.lr: expected float"),
    ({"model": "mlp", "optimizer": {"lr": float("nan")}}, "recipe.optimizer.lr: must be a finite number"),
    ({"model": "mlp", "epochs": 2.5}, "recipe.epochs: expected int"),
    ({"model": "mlp", "epochs": True}, "recipe.epochs: expected int"),
    ({"model": "mlp", "dropout": 1.0}, r"recipe.dropout: must be in \[0, 1\)"),
    ({"model": "mlp", "scheduler": "cosine"}, "recipe.scheduler: expected a mapping like {name: ..., gamma: ...}"),
    ({"model": "mlp", "optimizer": []}, "recipe.optimizer: expected a mapping"),
    ({"model": "mlp", "layers": {"n": 2}}, "recipe.layers.n: unknown field"),
])
def test_bad_fields_are_named(recipe, message):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(recipe)


def test_nested_and_flat_dotted_forms_are_the_same_recipe():
    nested = {"model": "cnn", "optimizer": {"name": "sgd", "lr": 0.1}, "scheduler": {"name": "step", "gamma": 0.5}}
    flat = {"model": "cnn", "optimizer.name": "sgd", "optimizer.lr": 0.1, "scheduler.name": "step",
            "scheduler.gamma": 0.5}
    assert parse_recipe(nested) == parse_recipe(flat)
    assert parse_recipe(nested).as_dict()["optimizer"] == {"name": "sgd", "lr": 0.1, "momentum": 0.0,
                                                           "weight_decay": 0.0}


def test_kiln_params_may_carry_extra_keys_when_not_strict():
    assert parse_recipe({"model": "mlp", "note": "x"}, strict=False) == parse_recipe({"model": "mlp"})


def test_platform_params_parse_to_the_submitted_recipe():
    spec = validate_spec({"recipe": {"model": "gpt", "dataset": "text", "optimizer": {"name": "adamw", "lr": 3e-4},
                                     "scheduler": {"name": "onecycle"}, "epochs": 7},
                          "params": {"note": "extra"}}, has_code=False)
    recipe = parse_recipe(flat_params(spec), strict=False)
    assert recipe.as_dict() == spec.recipe.model_dump()


def test_defaults_and_choices_match_the_platform_spec():
    for model in MODELS:
        assert Recipe(model=model).as_dict() == RecipeSpec(model=model).model_dump()
    choices = {name: typing.get_args(info.annotation) for name, info in RecipeSpec.model_fields.items()
               if typing.get_origin(info.annotation) is typing.Literal}
    assert choices == {"model": MODELS, "dataset": DATASETS}
    assert typing.get_args(OptimizerSpec.model_fields["name"].annotation) == OPTIMIZERS
    assert typing.get_args(LRSchedulerSpec.model_fields["name"].annotation) == SCHEDULERS
