"""``engine.cuda``: CUDA devices, streams, events, graphs, memory statistics and generators, as ``torch.cuda``.

Without CuPy or a GPU it behaves as PyTorch's CPU-only build: ``is_available()`` is False, ``device_count()`` is 0,
seeding and memory counters are harmless no-ops (0), and anything that needs a device raises
``CudaUnavailableError`` (a RuntimeError and an AssertionError, covering both of PyTorch's errors).

Example:
    >>> engine.cuda.is_available()  # False on a machine without a GPU
    False
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import backend
from engine import random as _random
from engine.cuda import amp
from engine.cuda._lazy import CudaUnavailableError, cupy, device_index
from engine.cuda.graphs import CUDAGraph, graph, graph_pool_handle, is_current_stream_capturing
from engine.cuda.memory import (
    empty_cache,
    max_memory_allocated,
    max_memory_reserved,
    mem_get_info,
    memory_allocated,
    memory_reserved,
    memory_stats,
    memory_summary,
    reset_max_memory_allocated,
    reset_max_memory_cached,
    reset_peak_memory_stats,
    set_per_process_memory_fraction,
)
from engine.cuda.nvml import clock_rate, memory_usage, power_draw, temperature, utilization
from engine.cuda.streams import (
    Event,
    ExternalStream,
    Stream,
    StreamContext,
    current_stream,
    default_stream,
    set_stream,
    stream,
)

__all__ = [
    "CUDAGraph",
    "CudaUnavailableError",
    "Event",
    "ExternalStream",
    "Stream",
    "StreamContext",
    "amp",
    "clock_rate",
    "current_device",
    "current_stream",
    "default_stream",
    "device",
    "device_count",
    "device_of",
    "empty_cache",
    "get_device_capability",
    "get_device_name",
    "get_device_properties",
    "get_rng_state",
    "get_rng_state_all",
    "graph",
    "graph_pool_handle",
    "init",
    "initial_seed",
    "is_available",
    "is_bf16_supported",
    "is_current_stream_capturing",
    "is_initialized",
    "manual_seed",
    "manual_seed_all",
    "max_memory_allocated",
    "max_memory_reserved",
    "mem_get_info",
    "memory_allocated",
    "memory_reserved",
    "memory_stats",
    "memory_summary",
    "memory_usage",
    "power_draw",
    "reset_max_memory_allocated",
    "reset_max_memory_cached",
    "reset_peak_memory_stats",
    "seed",
    "seed_all",
    "set_device",
    "set_per_process_memory_fraction",
    "set_rng_state",
    "set_rng_state_all",
    "set_stream",
    "stream",
    "synchronize",
    "temperature",
    "utilization",
]


# ----- availability and devices --------------------------------------------------------------------------
def is_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    return backend.cuda_available()


def is_initialized() -> bool:
    return backend.cuda_available()


def init() -> None:
    """Initialise CUDA now (raises without it)."""
    cupy()


def device_count() -> int:
    return backend.cuda_device_count()


def current_device() -> int:
    """The ordinal of the current CUDA device."""
    return int(cupy().cuda.runtime.getDevice())


def set_device(device) -> None:
    """Make ``device`` (int, ``"cuda:N"``, engine.device) current; a negative ordinal changes nothing."""
    if isinstance(device, int) and device < 0:
        return
    cupy().cuda.runtime.setDevice(device_index(device))


class device:
    """``with engine.cuda.device(1):`` makes device 1 current inside the block (-1 or None: no change)."""

    def __init__(self, device):
        if device is None or (isinstance(device, int) and device < 0):
            self.idx = -1
        elif isinstance(device, int):
            self.idx = device  # checked on entry, as PyTorch (naming a device needs no CUDA)
        else:
            self.idx = device_index(device)
        self.prev_idx = -1

    def __enter__(self):
        if self.idx >= 0:
            device_index(self.idx)
            self.prev_idx = current_device()
            if self.prev_idx != self.idx:
                set_device(self.idx)
        return self

    def __exit__(self, *exc):
        if self.idx >= 0 and self.prev_idx != self.idx:
            set_device(self.prev_idx)
        return False


class device_of(device):
    """``with engine.cuda.device_of(tensor):`` makes the tensor's device current (CPU tensors: no change)."""

    def __init__(self, obj):
        dev = obj.device
        super().__init__(dev.index if dev.type == "cuda" else -1)


@dataclass(frozen=True)
class _CudaDeviceProperties:
    name: str
    major: int
    minor: int
    total_memory: int
    multi_processor_count: int
    is_integrated: bool = False
    is_multi_gpu_board: bool = False

    def __repr__(self) -> str:
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // 2**20}MB, multi_processor_count={self.multi_processor_count})")


def get_device_properties(device=None) -> _CudaDeviceProperties:
    """Name, compute capability, memory and SM count of ``device`` (default: the current one)."""
    props = cupy().cuda.runtime.getDeviceProperties(device_index(device))
    name = props["name"]
    return _CudaDeviceProperties(
        name=name.decode() if isinstance(name, bytes) else str(name), major=int(props["major"]),
        minor=int(props["minor"]), total_memory=int(props["totalGlobalMem"]),
        multi_processor_count=int(props["multiProcessorCount"]), is_integrated=bool(props.get("integrated", 0)),
        is_multi_gpu_board=bool(props.get("isMultiGpuBoard", 0)))


def get_device_name(device=None) -> str:
    return get_device_properties(device).name


def get_device_capability(device=None) -> tuple[int, int]:
    props = get_device_properties(device)
    return props.major, props.minor


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """bfloat16 math on the current device: native from compute capability 8.0 (Ampere); False without CUDA."""
    if not is_available():
        return False
    return get_device_capability()[0] >= 8 or including_emulation


def synchronize(device=None) -> None:
    """Wait until all work queued on ``device`` (default: the current device) has finished."""
    cp = cupy()
    with cp.cuda.Device(device_index(device)):
        cp.cuda.runtime.deviceSynchronize()


# ----- generators ---------------------------------------------------------------------------------------
def manual_seed(seed: int) -> None:
    """Seed the current device's generator (deferred until CUDA is used, as in PyTorch)."""
    if not is_available():
        _random.cuda_manual_seed(seed)
        return
    _random.cuda_manual_seed(seed, current_device())


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
    return [get_rng_state(i) for i in range(device_count())]


def set_rng_state_all(new_states) -> None:
    for index, state in enumerate(new_states):
        set_rng_state(state, index)
