"""The recipe's data: the bundled dataset's train split for training, its test split for validation."""

from __future__ import annotations

from dataclasses import dataclass

from engine.datasets import Bars, Blobs, Digits, Regression, Spirals, TextCorpus
from engine.utils.data import Dataset
from worker.recipes.config import Recipe

TEXT_WINDOW = 64  # characters per training sequence (and the GPT's context length)


@dataclass(frozen=True)
class Task:
    """What the model learns. kind: "classify" (CE + accuracy), "regress" (MSE) or "language" (next char)."""

    kind: str
    train: Dataset
    val: Dataset
    sample_shape: tuple[int, ...]  # one input, without the batch dimension
    outputs: int  # classes, regression targets, or vocabulary size


def build_task(recipe: Recipe) -> Task:
    """The datasets are generated with a fixed seed, so every run of a recipe sees the same data."""
    name = recipe.dataset
    if name == "text":
        train, val = TextCorpus(train=True, seq_len=TEXT_WINDOW), TextCorpus(train=False, seq_len=TEXT_WINDOW)
        return Task("language", train, val, (TEXT_WINDOW,), train.vocab_size)
    if name == "digits":
        train, val = Digits(train=True), Digits(train=False)
        return Task("classify", train, val, (1, 8, 8), 10)
    if name == "bars":
        train, val = Bars(train=True), Bars(train=False)
        return Task("classify", train, val, (1, 8, 8), 3)
    if name == "blobs":
        train, val = Blobs(train=True), Blobs(train=False)
        return Task("classify", train, val, (2,), 3)
    if name == "spirals":
        train, val = Spirals(train=True), Spirals(train=False)
        return Task("classify", train, val, (2,), 3)
    if name == "regression":
        train, val = Regression(train=True), Regression(train=False)
        return Task("regress", train, val, (8,), 1)
    raise ValueError(f"unknown dataset {name!r}")  # parse_recipe already refused it
