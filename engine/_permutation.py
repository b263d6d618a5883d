"""PyTorch's CPU ``randperm``: a Fisher-Yates shuffle over raw mt19937 outputs, draw for draw.

Torch's CPU generator is mt19937 seeded with ``init_genrand(seed & 0xffffffff)``; its ``random()`` is one raw
32-bit output and ``random64()`` is two, the first in the high half. ``randperm_cpu`` (ATen's
``TensorFactories.cpp``) swaps position ``i`` with ``i + random() % (n - i)`` for ``i < n - 1`` when
``n < UINT32_MAX / 20``, and above that runs the inside-out shuffle with ``random64() % (i + 1)``. NumPy's
``RandomState`` is that same twister with that same seeding, so its raw outputs are torch's.
"""

from __future__ import annotations

import array

import numpy as np

SMALL_N_LIMIT = (2 ** 32 - 1) // 20  # torch: below this, random() % (n - i); from it on, random64() % (i + 1)
_CHUNK = 1 << 18  # draws per block: bounds the temporary arrays, whatever n is


def mt19937(seed: int) -> np.random.RandomState:
    """The twister torch's ``Generator.manual_seed(seed)`` starts from (the low 32 bits seed it)."""
    return np.random.RandomState(seed & 0xFFFFFFFF)


def raw32(mt: np.random.RandomState, count: int) -> np.ndarray:
    """The next ``count`` raw 32-bit outputs, as uint64 (NumPy returns the full range unmasked)."""
    return mt.randint(0, 1 << 32, size=count, dtype=np.uint32).astype(np.uint64)


def random64(mt: np.random.RandomState, count: int) -> np.ndarray:
    """``count`` of torch's ``random64()``: two raw outputs each, the first one the high 32 bits."""
    pairs = raw32(mt, 2 * count).reshape(count, 2)
    return (pairs[:, 0] << np.uint64(32)) | pairs[:, 1]


def randperm(mt: np.random.RandomState, n: int) -> np.ndarray:
    """The permutation torch's ``randperm(n, generator=g)`` returns when ``g`` is at the state of ``mt``."""
    out = array.array("q", range(n))  # NOTE: int64 cells index fast from Python and take 8 bytes each
    if n < SMALL_N_LIMIT:
        for start in range(0, n - 1, _CHUNK):
            steps = np.arange(start, min(start + _CHUNK, n - 1), dtype=np.uint64)
            targets = steps + raw32(mt, len(steps)) % (np.uint64(n) - steps)
            for i, j in enumerate(targets.tolist(), start):
                out[i], out[j] = out[j], out[i]
    else:
        for start in range(0, n, _CHUNK):
            steps = np.arange(start, min(start + _CHUNK, n), dtype=np.uint64)
            targets = random64(mt, len(steps)) % (steps + np.uint64(1))
            for i, j in enumerate(targets.tolist(), start):
                out[i] = out[j]  # position i still holds i: earlier steps only wrote below their own index
                out[j] = i
    return np.frombuffer(out, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
