"""Kiln's built-in training recipes: a config (model, dataset, optimizer, schedule) instead of code.

A recipe run executes ``python -m worker.recipes.run`` inside the sandboxed job. It reads the recipe
from ``engine.track.config`` (or a JSON file given on the command line), trains on the engine, and
reports through ``engine.track``: step and epoch metrics, progress, a checkpoint every epoch, and
resumes from the last checkpoint when the run is re-queued. This package imports only the engine
and the standard library (never Django, Celery or the webapp), because it runs inside the job.

Example:
    >>> from engine import track
    >>> from worker.recipes import run_recipe
    >>> track.init(dir="/tmp/runs")  # doctest: +SKIP
    >>> run_recipe({"model": "mlp", "dataset": "spirals", "epochs": 3})["val_accuracy"]  # doctest: +SKIP
    0.93
"""

from worker.recipes.config import Recipe, RecipeError, parse_recipe
from worker.recipes.train import run_recipe

__all__ = ["Recipe", "RecipeError", "parse_recipe", "run_recipe"]
