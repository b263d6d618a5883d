"""The recipe config: parsed from a nested dict or from Kiln's flat dotted params, checked up front.

The fields, defaults and bounds are those of ``webapp.experiments.spec.RecipeSpec`` (the platform
validates a submitted spec with it); they are repeated here because the job must not import the
webapp. ``tests/worker/recipes`` checks that the two stay in step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODELS = ("mlp", "cnn", "lstm", "gpt")
DATASETS = ("digits", "blobs", "spirals", "regression", "bars", "text")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "exponential", "onecycle")

# Which data each model can read; anything else fails before any work is done.
MODEL_DATASETS = {
    "mlp": ("digits", "blobs", "spirals", "regression", "bars"),
    "cnn": ("digits", "bars"),
    "lstm": ("digits", "bars", "text"),
    "gpt": ("text",),
}
MODEL_INPUTS = {
    "mlp": "feature vectors or images (flattened)",
    "cnn": "images",
    "lstm": "sequences: text, or images read row by row",
    "gpt": "text",
}


class RecipeError(ValueError):
    """A recipe that can't run; the message names the field and what would work."""


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class SchedulerConfig:
    name: str = "none"
    step_size: int = 1
    gamma: float = 0.1


@dataclass(frozen=True)
class Recipe:
    model: str
    dataset: str = "digits"
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    epochs: int = 5
    batch_size: int = 64
    hidden_size: int = 128
    layers: int = 2
    dropout: float = 0.0
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "dataset": self.dataset, "optimizer": vars(self.optimizer).copy(),
                "scheduler": vars(self.scheduler).copy(), "epochs": self.epochs, "batch_size": self.batch_size,
                "hidden_size": self.hidden_size, "layers": self.layers, "dropout": self.dropout, "seed": self.seed}


# field -> (kind, check, what the check means)
_RULES: dict[str, tuple[type, Any, str]] = {
    "model": (str, lambda v: v in MODELS, f"one of {', '.join(MODELS)}"),
    "dataset": (str, lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}"),
    "optimizer.name": (str, lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    "optimizer.lr": (float, lambda v: 0 < v <= 10, "in (0, 10]"),
    "optimizer.momentum": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "optimizer.weight_decay": (float, lambda v: 0 <= v <= 1, "in [0, 1]"),
    "scheduler.name": (str, lambda v: v in SCHEDULERS, f"one of {', '.join(SCHEDULERS)}"),
    "scheduler.step_size": (int, lambda v: v >= 1, ">= 1"),
    "scheduler.gamma": (float, lambda v: 0 < v <= 1, "in (0, 1]"),
    "epochs": (int, lambda v: 1 <= v <= 1000, "in [1, 1000]"),
    "batch_size": (int, lambda v: 1 <= v <= 65536, "in [1, 65536]"),
    "hidden_size": (int, lambda v: 1 <= v <= 65536, "in [1, 65536]"),
    "layers": (int, lambda v: 1 <= v <= 64, "in [1, 64]"),
    "dropout": (float, lambda v: 0 <= v < 1, "in [0, 1)"),
    "seed": (int, lambda v: v >= 0, ">= 0"),
}


_GROUPS = {"optimizer": "lr", "scheduler": "gamma"}


def parse_recipe(data: Mapping[str, Any], *, strict: bool = True) -> Recipe:
    """A checked `Recipe` from ``{"model": ..., "optimizer": {"lr": ...}}`` or ``{"optimizer.lr": ...}``.

    Keys outside the recipe are refused (a typo must not silently train with a default). With
    ``strict=False`` they are ignored: Kiln's run params hold the recipe (validated at submit) plus
    the spec's free-form ``params``.

    Raises:
        RecipeError: naming the first bad field, or a model that can't read the dataset.
    """
    flat = _flatten(data)
    unknown = sorted(set(flat) - set(_RULES))
    if not strict:
        flat = {key: value for key, value in flat.items() if key in _RULES}
    elif unknown:
        raise RecipeError(f"recipe.{unknown[0]}: unknown field (recipe fields: {', '.join(sorted(_RULES))})")
    if "model" not in flat:
        raise RecipeError(f"recipe.model: required, one of {', '.join(MODELS)}")
    values = {key: _checked(key, value) for key, value in flat.items()}
    nested: dict[str, Any] = {"optimizer": {}, "scheduler": {}}
    for key, value in values.items():
        group, _, name = key.rpartition(".")
        (nested[group] if group else nested)[name] = value
    recipe = Recipe(**{**nested, "optimizer": OptimizerConfig(**nested["optimizer"]),
                       "scheduler": SchedulerConfig(**nested["scheduler"])})
    _check_combination(recipe)
    return recipe


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise RecipeError(f"recipe{'.' + prefix[:-1] if prefix else ''}: expected a mapping of fields, "
                          f"got {type(data).__name__}")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if not prefix and key in _GROUPS and not isinstance(value, Mapping):
            raise RecipeError(f"recipe.{key}: expected a mapping like {{name: ..., {_GROUPS[key]}: ...}}, "
                              f"got {value!r}")
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _checked(key: str, value: Any) -> Any:
    kind, check, meaning = _RULES[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecipeError(f"recipe.{key}: expected {kind.__name__} {meaning}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecipeError(f"recipe.{key}: must be a finite number, got {value!r}")
    if not check(value):
        raise RecipeError(f"recipe.{key}: must be {meaning}, got {value!r}")
    return value


def _check_combination(recipe: Recipe) -> None:
    if recipe.dataset not in MODEL_DATASETS[recipe.model]:
        fits = [m for m, datasets in MODEL_DATASETS.items() if recipe.dataset in datasets]
        raise RecipeError(
            f"recipe: model {recipe.model!r} can't train on dataset {recipe.dataset!r}: {recipe.model} reads "
            f"{MODEL_INPUTS[recipe.model]} ({', '.join(MODEL_DATASETS[recipe.model])}); for {recipe.dataset} "
            f"use {' or '.join(fits)}")
    if recipe.model == "gpt" and recipe.hidden_size < 4:
        raise RecipeError("recipe.hidden_size: gpt needs hidden_size >= 4 (the width of its attention heads)")
