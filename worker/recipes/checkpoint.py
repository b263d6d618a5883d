"""A recipe's checkpoint: everything needed to continue exactly where an epoch ended.

One flat dict for ``engine.track.save_checkpoint``: the model's tensors as plain arrays
(``model.<name>``, readable by any safetensors tool), the optimizer, scheduler and random
states as ``engine.save`` bytes, and the epoch and recipe as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import engine
import engine.nn as nn
from engine.serialization import dumps, loads
from engine.track import Checkpoint
from worker.recipes.config import Recipe, RecipeError

MODEL_PREFIX = "model."


def checkpoint_state(*, recipe: Recipe, epoch: int, model: nn.Module, optimizer, scheduler,
                     data_generator: engine.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {MODEL_PREFIX + name: tensor.detach().cpu().numpy()
                             for name, tensor in model.state_dict().items()}
    state["optimizer"] = dumps(optimizer.state_dict())
    if scheduler is not None:
        state["scheduler"] = dumps(scheduler.state_dict())
    state["rng"] = dumps({"cpu": engine.get_rng_state(), "cuda": engine.cuda.get_rng_state_all(),
                          "data": data_generator.get_state()})
    state["epoch"] = epoch
    state["recipe"] = recipe.as_dict()
    return state


def restore(checkpoint: Checkpoint, *, recipe: Recipe, model: nn.Module, optimizer, scheduler,
            data_generator: engine.Generator) -> int:
    """Load `checkpoint` into the freshly built objects; returns the last finished epoch."""
    state = checkpoint.state
    saved = state.get("recipe")
    if saved != recipe.as_dict():
        raise RecipeError(f"the checkpoint to resume from ({checkpoint.path.name}) was written by a different "
                          f"recipe: {saved!r}; start a new run instead")
    weights = {name[len(MODEL_PREFIX):]: engine.from_numpy(np.array(value))
               for name, value in state.items() if name.startswith(MODEL_PREFIX)}
    model.load_state_dict(weights)
    optimizer.load_state_dict(loads(state["optimizer"], map_location=_device_of(model)))
    if scheduler is not None:
        scheduler.load_state_dict(loads(state["scheduler"]))
    rng = loads(state["rng"])
    engine.set_rng_state(rng["cpu"])
    cuda_states = rng.get("cuda") or []  # older checkpoints have none; a machine with fewer GPUs restores its own
    engine.cuda.set_rng_state_all(cuda_states[:engine.cuda.device_count()])
    data_generator.set_state(rng["data"])
    return int(state["epoch"])


def _device_of(model: nn.Module):
    return next(model.parameters()).device
