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
from engine.cuda import amp, nccl, nvtx, profiler, random
from engine.cuda._lazy import CudaUnavailableError, cupy, device_index
from engine.cuda.errors import CudaError, DeferredCudaCallError, check_error, cudart, cudaStatus
from engine.cuda.graphs import CUDAGraph, graph, graph_pool_handle, is_current_stream_capturing
from engine.cuda.legacy_types import (
    BFloat16Tensor,
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)
from engine.cuda.memory import (
    empty_cache,
    get_per_process_memory_fraction,
    max_memory_allocated,
    max_memory_cached,
    max_memory_reserved,
    mem_get_info,
    memory_allocated,
    memory_cached,
    memory_reserved,
    memory_stats,
    memory_stats_as_nested_dict,
    memory_summary,
    reset_accumulated_memory_stats,
    reset_max_memory_allocated,
    reset_max_memory_cached,
    reset_peak_memory_stats,
    set_per_process_memory_fraction,
)
from engine.cuda.nvml import (
    clock_rate,
    device_memory_used,
    list_gpu_processes,
    memory_usage,
    power_draw,
    temperature,
    utilization,
)
from engine.cuda.random import (
    get_rng_state,
    get_rng_state_all,
    initial_seed,
    manual_seed,
    manual_seed_all,
    seed,
    seed_all,
    set_rng_state,
    set_rng_state_all,
)
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

has_half = True  # float16 tensors work on every CUDA device CuPy supports
has_magma = False  # linear algebra runs on cuSOLVER through CuPy, never MAGMA

__all__ = [
    "BFloat16Tensor",
    "BoolTensor",
    "ByteTensor",
    "CUDAGraph",
    "CharTensor",
    "CudaError",
    "CudaUnavailableError",
    "DeferredCudaCallError",
    "DoubleTensor",
    "Event",
    "ExternalStream",
    "FloatTensor",
    "HalfTensor",
    "IntTensor",
    "LongTensor",
    "ShortTensor",
    "Stream",
    "StreamContext",
    "amp",
    "can_device_access_peer",
    "check_error",
    "clock_rate",
    "cudaStatus",
    "cudart",
    "current_device",
    "current_stream",
    "default_stream",
    "device",
    "device_count",
    "device_memory_used",
    "device_of",
    "empty_cache",
    "get_arch_list",
    "get_device_capability",
    "get_device_name",
    "get_device_properties",
    "get_gencode_flags",
    "get_per_process_memory_fraction",
    "get_rng_state",
    "get_rng_state_all",
    "get_stream_from_external",
    "get_sync_debug_mode",
    "graph",
    "graph_pool_handle",
    "has_half",
    "has_magma",
    "init",
    "initial_seed",
    "is_available",
    "is_bf16_supported",
    "is_current_stream_capturing",
    "is_initialized",
    "is_tf32_supported",
    "list_gpu_processes",
    "manual_seed",
    "manual_seed_all",
    "max_memory_allocated",
    "max_memory_cached",
    "max_memory_reserved",
    "mem_get_info",
    "memory_allocated",
    "memory_cached",
    "memory_reserved",
    "memory_stats",
    "memory_stats_as_nested_dict",
    "memory_summary",
    "memory_usage",
    "nccl",
    "nvtx",
    "power_draw",
    "profiler",
    "random",
    "reset_accumulated_memory_stats",
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
    "set_sync_debug_mode",
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


def is_tf32_supported() -> bool:
    """TF32 tensor-core math on the current device: from compute capability 8.0 (Ampere); False without CUDA."""
    return is_available() and get_device_capability()[0] >= 8


def can_device_access_peer(device, peer_device) -> bool:
    """Whether ``device`` can read and write the memory of ``peer_device`` directly (a device is not its own peer)."""
    index, peer = device_index(device, optional=False), device_index(peer_device, optional=False)
    if index == peer:
        return False
    return bool(cupy().cuda.runtime.deviceCanAccessPeer(index, peer))


def get_arch_list() -> list[str]:
    """The architectures kernels are built for: CuPy compiles at run time for each visible device ([] without CUDA)."""
    if not is_available():
        return []
    return sorted({"sm_{}{}".format(*get_device_capability(i)) for i in range(device_count())})


def get_gencode_flags() -> str:
    """``get_arch_list`` as nvcc ``-gencode`` flags."""
    return " ".join(f"-gencode compute=compute_{arch[3:]},code={arch}" for arch in get_arch_list())


def get_stream_from_external(data_ptr: int, device=None) -> ExternalStream:
    """A ``Stream`` over a ``cudaStream_t`` made by another library (``data_ptr``), on ``device``."""
    return ExternalStream(data_ptr, device)


_SYNC_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_sync_debug_mode(debug_mode: int | str) -> None:
    """Warn (``"warn"``/1) or raise (``"error"``/2) on each synchronizing device-to-host copy; ``"default"``/0: silent."""
    if isinstance(debug_mode, str):
        if debug_mode not in _SYNC_DEBUG_MODES:
            raise RuntimeError('invalid value of debug_mode, expected one of `default`, `warn`, `error`')
        debug_mode = _SYNC_DEBUG_MODES[debug_mode]
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode {debug_mode}, expected 0, 1 or 2")
    backend.sync_debug_mode = int(debug_mode)


def get_sync_debug_mode() -> int:
    return backend.sync_debug_mode


def __getattr__(name: str):
    if name == "default_generators":  # one per visible device, so it follows the CUDA in use
        from engine.device import device as device_type

        return tuple(_random.generator_for(device_type("cuda", i)) for i in range(device_count()))
    raise AttributeError(f"module 'engine.cuda' has no attribute '{name}'")
