"""Random number generation: ``Generator`` objects, the default generator and ``manual_seed``."""

from __future__ import annotations

import json

import numpy as np

from engine import _permutation, backend
from engine.device import CPU, as_device

_DEFAULT_SEED = 67280421310721  # PyTorch's default initial seed


class Generator:
    """A random-number stream for one device; on CPU it wraps NumPy's PCG64, with torch's mt19937 beside it.

    On CPU, ``randperm`` and the seeds that samplers and ``DataLoader`` draw (torch's
    ``torch.empty((), dtype=torch.int64).random_(generator=g)``) come from an mt19937 stream seeded exactly as
    torch's, so they equal PyTorch's draw for draw; every other distribution comes from PCG64, which they do not
    move (so a ``rand`` between two ``randperm`` calls does not shift the permutations as it would in torch).

    On CUDA it is counter-based, as PyTorch's Philox generator: its state is (seed, offset), each draw hashes
    the counters offset .. offset + n - 1 in one kernel (``engine.ops.cuda_kernels``) and moves the offset on,
    so ``get_state``/``set_state`` (16 bytes: seed and offset, little-endian, PyTorch's CUDA layout) restore a
    stream exactly and checkpoints resume bit-for-bit.

    Example:
        >>> g = engine.Generator().manual_seed(0)
        >>> a = engine.rand(3, generator=g)
        >>> state = g.get_state(); b = engine.rand(3, generator=g)
        >>> g.set_state(state); engine.equal(engine.rand(3, generator=g), b)
        True
    """

    def __init__(self, device="cpu"):
        self.device = as_device(device)
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        seed = int(seed)
        if seed < 0:
            seed &= (1 << 64) - 1  # NOTE: PyTorch accepts negative seeds by wrapping them
        self._initial_seed = seed
        if self.device.type == "cpu":
            self._rng = np.random.Generator(np.random.PCG64(seed))
            self._mt = _permutation.mt19937(seed)
        else:
            from engine.ops.cuda_kernels import splitmix64

            self._key, self._offset = splitmix64(seed), 0
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy; returns the seed."""
        seed = int(np.random.SeedSequence().entropy) % (1 << 63)
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self):
        """The full state as a uint8 tensor (JSON inside), for ``set_state`` and checkpoints."""
        from engine.creation import tensor
        from engine.dtypes import uint8

        if self.device.type != "cpu":
            raw = self._initial_seed.to_bytes(8, "little") + self._offset.to_bytes(8, "little")
            return tensor(list(raw), dtype=uint8)
        mt = self._mt.get_state(legacy=False)["state"]
        payload = {"seed": self._initial_seed, "bit_generator": self._rng.bit_generator.state,
                   "mt19937": {"key": mt["key"].tolist(), "pos": mt["pos"]}}
        raw = json.dumps(payload, sort_keys=True).encode()
        return tensor(list(raw), dtype=uint8)

    def set_state(self, new_state) -> Generator:
        raw = bytes(np.asarray(new_state.numpy() if hasattr(new_state, "numpy") else new_state,
                               dtype=np.uint8).tolist())
        if self.device.type != "cpu":
            if len(raw) != 16:
                raise RuntimeError(f"Expected a CUDA generator state of 16 bytes (seed, offset), got {len(raw)}")
            from engine.ops.cuda_kernels import splitmix64

            self._initial_seed = int.from_bytes(raw[:8], "little")
            self._key, self._offset = splitmix64(self._initial_seed), int.from_bytes(raw[8:], "little")
            return self
        payload = json.loads(raw.decode())
        self._initial_seed = payload["seed"]
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = payload["bit_generator"]
        self._mt = _permutation.mt19937(self._initial_seed)  # NOTE: states saved before mt19937 start it afresh
        if "mt19937" in payload:
            self._mt.set_state({"bit_generator": "MT19937", "state": payload["mt19937"]})
        return self

    # ----- samplers (used by engine.creation) -----------------------------------------------
    def uniform_array(self, shape, np_dtype):
        if self.device.type == "cpu":
            kind = np_dtype if np_dtype in (np.float32, np.float64) else np.float32
            out = self._rng.random(shape, dtype=kind)
        else:
            out = self._cuda_draw("uniform", shape, np.float64 if np_dtype == np.float64 else np.float32)
        return out if out.dtype == np_dtype else out.astype(np_dtype)

    def normal_array(self, shape, np_dtype):
        if self.device.type == "cpu":
            kind = np_dtype if np_dtype in (np.float32, np.float64) else np.float32
            out = self._rng.standard_normal(shape, dtype=kind)
        else:
            out = self._cuda_draw("normal", shape, np.float64 if np_dtype == np.float64 else np.float32)
        return out if out.dtype == np_dtype else out.astype(np_dtype)

    def integers_array(self, low: int, high: int, shape, np_dtype):
        if self.device.type == "cpu":
            return self._rng.integers(low, high, shape, dtype=np.int64).astype(np_dtype, copy=False)
        if high <= low:
            raise ValueError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
        return self._cuda_draw("randint", shape, np.int64, low, high).astype(np_dtype, copy=False)

    def permutation_array(self, n: int):
        if self.device.type == "cpu":
            return _permutation.randperm(self._mt, n)
        return self._cuda_draw("uniform", (n,), np.float64).argsort()

    def seed_draw(self) -> int:
        """A fresh 63-bit seed, as torch's ``torch.empty((), dtype=torch.int64).random_(generator=self)``."""
        if self.device.type == "cpu":
            return int(_permutation.random64(self._mt, 1)[0]) % (1 << 63)
        return int(self.integers_array(0, (1 << 63) - 1, (), np.int64))

    def _position(self):
        """A cheap summary of where the stream stands, to notice that something drew from it."""
        if self.device.type != "cpu":
            return self._initial_seed, self._offset
        mt = self._mt.get_state(legacy=False)["state"]
        return self._rng.bit_generator.state, mt["pos"], mt["key"].tobytes()

    def take_offset(self, n: int) -> int:
        """CUDA only: reserve ``n`` counters for one draw; returns the first."""
        start = self._offset
        self._offset += n
        return start

    def _cuda_draw(self, kind: str, shape, np_dtype, *bounds):
        from engine.ops import cuda_kernels

        cupy = backend.cupy_or_raise()
        with cupy.cuda.Device(self.device.index):
            out = cupy.empty(shape, dtype=np_dtype)
            counters = out.size * (2 if kind == "normal" else 1)
            getattr(cuda_kernels, kind)(out, self._key, self.take_offset(counters), *bounds)
        return out


default_generator = Generator(CPU)
_cuda_generators: dict[int, Generator] = {}


def generator_for(device) -> Generator:
    """The default generator of a device."""
    if device.type == "cpu":
        return default_generator
    gen = _cuda_generators.get(device.index)
    if gen is None:
        gen = _cuda_generators[device.index] = Generator(device)
        if _last_seed is not None:
            gen.manual_seed(_last_seed)
    return gen


_last_seed: int | None = None


def manual_seed(seed: int) -> Generator:
    """Seed every default generator (CPU and CUDA) for reproducible runs."""
    global _last_seed
    _last_seed = int(seed)
    default_generator.manual_seed(seed)
    for gen in _cuda_generators.values():
        gen.manual_seed(seed)
    return default_generator


def seed() -> int:
    s = default_generator.seed()
    manual_seed(s)
    return s


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)


def cuda_manual_seed(seed: int, index: int | None = None) -> None:
    global _last_seed
    if index is None:
        _last_seed = int(seed)
        for gen in _cuda_generators.values():
            gen.manual_seed(seed)
    else:
        generator_for(as_device(f"cuda:{index}")).manual_seed(seed)


def thread_safe_generator():
    """The generator a DataLoader thread worker should draw from; None (the global RNG) everywhere in the
    engine, whose DataLoader workers are processes (each seeded on its own) or the main process."""
    return None
