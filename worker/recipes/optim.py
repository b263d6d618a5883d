"""The recipe's optimizer and learning-rate schedule."""

from __future__ import annotations

import engine.nn as nn
from engine import optim
from engine.optim import lr_scheduler
from worker.recipes.config import Recipe


def build_optimizer(model: nn.Module, recipe: Recipe) -> optim.Optimizer:
    """`momentum` applies to sgd and rmsprop. A gpt decays only its matrices (not biases, norms)."""
    cfg = recipe.optimizer
    params: list = list(model.parameters())
    if recipe.model == "gpt" and cfg.weight_decay:
        params = [{"params": [p for p in params if p.dim() >= 2]},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if cfg.name == "sgd":
        return optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adagrad":
        return optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.name!r}")  # parse_recipe already refused it


def build_scheduler(optimizer: optim.Optimizer, recipe: Recipe,
                    steps_per_epoch: int) -> tuple[lr_scheduler.LRScheduler | None, bool]:
    """The schedule and whether it steps after every batch (onecycle) rather than every epoch.

    step: lr *= gamma every `step_size` epochs; exponential: lr *= gamma every epoch; cosine: anneal
    to 0 over the run; onecycle: warm up to lr and anneal, per batch.
    """
    cfg = recipe.scheduler
    if cfg.name == "none":
        return None, False
    if cfg.name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma), False
    if cfg.name == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, gamma=cfg.gamma), False
    if cfg.name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs), False
    if cfg.name == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.optimizer.lr,
                                       total_steps=recipe.epochs * steps_per_epoch), True
    raise ValueError(f"unknown scheduler {cfg.name!r}")  # parse_recipe already refused it
