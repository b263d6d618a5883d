"""``engine.cuda.random``: the CUDA generators' seeds and states, as ``torch.cuda.random`` (re-exported by ``engine.cuda``)."""

from __future__ import annotations

from engine import backend
from engine import random as _random
from engine.cuda._lazy import current_index, device_index

__all__ = ["get_rng_state", "get_rng_state_all", "initial_seed", "manual_seed", "manual_seed_all", "seed", "seed_all",
           "set_rng_state", "set_rng_state_all"]


def manual_seed(seed: int) -> None:
    """Seed the current device's generator (deferred until CUDA is used, as in PyTorch)."""
    if not backend.cuda_available():
        _random.cuda_manual_seed(seed)
        return
    _random.cuda_manual_seed(seed, current_index())


def manual_seed_all(seed: int) -> None:
    """Seed the generators of every CUDA device (those made later too)."""
    _random.cuda_manual_seed(seed)


def seed() -> None:
    """Seed the current device's generator from the operating system's entropy."""
    _generator(None).seed()


def seed_all() -> None:
    import numpy as np

    entropy = np.random.SeedSequence().entropy
    manual_seed_all(int(entropy if isinstance(entropy, int) else 0) % (1 << 63))


def initial_seed() -> int:
    return _generator(None).initial_seed()


def _generator(device):
    from engine.device import device as device_type

    return _random.generator_for(device_type("cuda", device_index(device)))


def get_rng_state(device="cuda"):
    """The generator state of ``device`` as a uint8 CPU tensor (for ``set_rng_state`` and checkpoints)."""
    return _generator(device).get_state()


def set_rng_state(new_state, device="cuda") -> None:
    _generator(device).set_state(new_state)


def get_rng_state_all() -> list:
    """One state per visible device ([] without CUDA)."""
    return [get_rng_state(i) for i in range(backend.cuda_device_count())]


def set_rng_state_all(new_states) -> None:
    for index, state in enumerate(new_states):
        set_rng_state(state, index)
