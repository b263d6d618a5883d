"""``cupy.random`` (fake): ``RandomState`` over NumPy's PCG64, returning fake device arrays."""

from __future__ import annotations

import numpy as _np

from fake_cupy._core import NAMES as _NAMES
from fake_cupy._core import wrap as _wrap


class RandomState:
    """The samplers the engine draws from; each returns a fake device array (streams differ from CuPy's)."""

    def __init__(self, seed=None, method=None):
        self.seed(seed)

    def seed(self, seed=None):
        self._rng = _np.random.Generator(_np.random.PCG64(seed))

    def random_sample(self, size=None, dtype=float):
        return _wrap(_np.asarray(self._rng.random(size, dtype=dtype)))

    def standard_normal(self, size=None, dtype=float):
        return _wrap(_np.asarray(self._rng.standard_normal(size, dtype=dtype)))

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        return _wrap(_np.asarray(self._rng.normal(loc, scale, size).astype(dtype)))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        return _wrap(_np.asarray(self._rng.uniform(low, high, size).astype(dtype)))

    def randint(self, low, high=None, size=None, dtype=int):
        return _wrap(_np.asarray(self._rng.integers(low, high, size, dtype=dtype)))

    def permutation(self, num):
        if not isinstance(num, int):
            raise TypeError("fake cupy: permutation() of an array is not supported; pass an int")
        return _wrap(self._rng.permutation(num))


assert {n for n in vars(RandomState) if not n.startswith("_")} <= _NAMES["cupy.random.RandomState"]
_STATE = RandomState()


def get_random_state() -> RandomState:
    return _STATE


def seed(seed=None) -> None:
    _STATE.seed(seed)
