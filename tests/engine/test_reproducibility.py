"""Seeded CPU training repeats exactly; a checkpoint (model, optimizer, scheduler, RNG) resumes exactly."""

from __future__ import annotations

import numpy as np

import engine
from engine.optim import Adam
from engine.optim.lr_scheduler import StepLR
from engine.utils.data import DataLoader, TensorDataset

DATA = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
TARGET = (DATA @ np.arange(6, dtype=np.float32)[:, None]).astype(np.float32)


class Run:
    """A tiny MLP with dropout, shuffled batches, Adam and a step schedule: every RNG consumer."""

    def __init__(self):
        self.params = {"w1": (engine.randn(6, 16) * 0.3).requires_grad_(), "b1": engine.zeros(16, requires_grad=True),
                       "w2": (engine.randn(16, 1) * 0.3).requires_grad_()}
        self.opt = Adam(self.params.values(), lr=0.01)
        self.sched = StepLR(self.opt, step_size=2, gamma=0.5)
        self.loader = DataLoader(TensorDataset(engine.tensor(DATA), engine.tensor(TARGET)), batch_size=16,
                                 shuffle=True)

    def epoch(self) -> list:
        losses = []
        for x, y in self.loader:
            hidden = (x @ self.params["w1"] + self.params["b1"]).relu()
            keep = (engine.rand(hidden.shape) > 0.2).float() / 0.8  # dropout
            loss = (((hidden * keep) @ self.params["w2"] - y) ** 2).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            losses.append(loss.item())
        self.sched.step()
        return losses

    def checkpoint(self, epoch: int) -> dict:
        return {"model": {k: p.detach() for k, p in self.params.items()}, "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "epoch": epoch, "rng": engine.get_rng_state()}

    def restore(self, checkpoint: dict) -> int:
        for name, p in self.params.items():
            with engine.no_grad():
                p.copy_(checkpoint["model"][name])
        self.opt.load_state_dict(checkpoint["optimizer"])
        self.sched.load_state_dict(checkpoint["scheduler"])
        engine.set_rng_state(checkpoint["rng"])
        return checkpoint["epoch"]


def train(seed: int, epochs: int = 3) -> list:
    engine.manual_seed(seed)
    run = Run()
    return [run.epoch() for _ in range(epochs)]


def test_manual_seed_makes_training_repeat_exactly():
    assert train(11) == train(11)
    assert train(11) != train(12)


def test_rng_state_round_trips_for_the_default_and_custom_generators():
    state = engine.get_rng_state()
    first = engine.randn(5)
    engine.set_rng_state(state)
    assert engine.equal(engine.randn(5), first)
    g = engine.Generator().manual_seed(4)
    saved = g.get_state()
    a = engine.rand(3, generator=g)
    g.set_state(saved)
    assert engine.equal(engine.rand(3, generator=g), a)


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    engine.manual_seed(5)
    straight = Run()
    losses = [straight.epoch(), straight.epoch()]
    path = tmp_path / "ckpt.safetensors"
    engine.save(straight.checkpoint(epoch=2), path)
    losses += [straight.epoch(), straight.epoch()]

    engine.manual_seed(999)  # a new process would start from a different state and different weights
    resumed = Run()
    start = resumed.restore(engine.load(path))
    assert start == 2
    assert [resumed.epoch(), resumed.epoch()] == losses[2:]
    for name, p in straight.params.items():
        assert engine.equal(resumed.params[name], p)
    assert resumed.sched.get_last_lr() == straight.sched.get_last_lr()
