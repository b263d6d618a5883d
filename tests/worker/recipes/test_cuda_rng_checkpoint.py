"""A recipe checkpoint carries the CUDA generators' states and restores them (on tests/fake_cupy here)."""

from __future__ import annotations

from pathlib import Path

import fake_cupy
import pytest

import engine
from engine import backend
from engine.track.checkpoint import Checkpoint
from worker.recipes.checkpoint import checkpoint_state, restore
from worker.recipes.config import parse_recipe


@pytest.fixture
def fake_cuda():
    previous = backend._use_array_module_for_tests(fake_cupy)
    try:
        yield
    finally:
        backend._use_array_module_for_tests(previous)


@pytest.mark.gpu
def test_the_checkpoint_restores_the_cuda_stream(fake_cuda):
    recipe = parse_recipe({"model": "mlp", "dataset": "spirals", "epochs": 1})
    model = engine.nn.Linear(2, 2).to("cuda")
    optimizer = engine.optim.SGD(model.parameters(), lr=0.1)
    data_generator = engine.Generator().manual_seed(5)
    engine.cuda.manual_seed(7)
    engine.rand(10, device="cuda")
    state = checkpoint_state(recipe=recipe, epoch=1, model=model, optimizer=optimizer, scheduler=None,
                             data_generator=data_generator)
    expected = engine.rand(10, device="cuda")  # what an uninterrupted run draws next
    engine.cuda.manual_seed(99)
    restore(Checkpoint(step=1, state=state, path=Path("step-1.safetensors")), recipe=recipe, model=model,
            optimizer=optimizer, scheduler=None, data_generator=data_generator)
    assert engine.equal(engine.rand(10, device="cuda"), expected)
