"""``cupy.cuda`` (fake): one device, streams and events that time on the host, a counting memory pool."""

from __future__ import annotations

import contextlib as _contextlib
import threading as _threading
import time as _time
from types import SimpleNamespace as _SimpleNamespace

import numpy as _np

from fake_cupy import _core
from fake_cupy._core import NAMES as _NAMES
from fake_cupy._memory_hook import MemoryHook as _MemoryHook

_current_streams = _threading.local()

_current = [0]


class Device:
    """``cupy.cuda.Device``; only device 0 exists."""

    def __init__(self, device=None):
        self.id = _current[0] if device is None else int(device)
        if self.id != 0:
            raise RuntimeError("cudaErrorInvalidDevice: invalid device ordinal (fake cupy has one device)")
        self._previous: list[int] = []

    def __enter__(self):
        self._previous.append(_current[0])
        _current[0] = self.id
        return self

    def __exit__(self, *exc):
        _current[0] = self._previous.pop()
        return False

    def use(self):
        _current[0] = self.id

    def synchronize(self):
        return None

    @property
    def compute_capability(self) -> str:
        return "90"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Stream:
    """``cupy.cuda.Stream``: work runs at once on the host; ``with`` makes it current; capture records a Graph."""

    null: Stream

    def __init__(self, null=False, non_blocking=False, ptr=None, priority=None):
        self.ptr = 0 if null else id(self)
        self.priority = 0 if priority is None else int(priority)
        self._tape: list | None = None
        self._before: list = []

    def __enter__(self):
        stack = _stream_stack()
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _stream_stack().pop()
        return False

    def begin_capture(self, mode=None):
        """Start recording this stream's work into a Graph (not on the null stream, as in CUDA)."""
        if self.ptr == 0:
            raise RuntimeError("cudaErrorStreamCaptureUnsupported: the legacy null stream cannot be captured")
        if _core._capture.tape is not None:
            raise RuntimeError("cudaErrorIllegalState: a stream is already capturing")
        # NOTE: the fake runs captured work at once (it needs the results' shapes); CUDA runs none of it, so the
        # memory that existed before the capture gets its contents back at end_capture (in-place work counts once)
        self._before = [(owner, owner._a.copy()) for owner in list(_core._owners.values())]
        self._tape = _core._capture.tape = []

    def end_capture(self):
        if self._tape is None:
            raise RuntimeError("cudaErrorIllegalState: the stream is not capturing")
        tape, self._tape, _core._capture.tape = self._tape, None, None
        before, self._before = self._before, []
        for owner, contents in before:
            _np.copyto(owner._a, contents)
        return Graph(tape)

    def is_capturing(self) -> bool:
        return self._tape is not None

    def synchronize(self):
        return None

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        return None

    def use(self):
        stack = _stream_stack()
        stack[-1:] = [self]
        return self

    @property
    def done(self) -> bool:
        return True


Stream.null = Stream(null=True)


class ExternalStream(Stream):
    def __init__(self, ptr, device_id=-1):
        super().__init__()
        self.ptr = int(ptr)


def _stream_stack() -> list:
    stack = getattr(_current_streams, "stack", None)
    if stack is None:
        stack = _current_streams.stack = [Stream.null]
    return stack


class Graph:
    """``cupy.cuda.Graph``: what a capture recorded, replayed into the same arrays by ``launch``."""

    def __init__(self, tape):
        self._tape = tape

    def launch(self, stream=None):
        _core.replay(self._tape)

    def upload(self, stream=None):
        return None


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._time: float | None = None
        self._timing = not disable_timing

    def record(self, stream=None):
        self._time = _time.perf_counter()

    def synchronize(self):
        return None

    @property
    def done(self) -> bool:
        return True


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events."""
    if start_event._time is None or end_event._time is None:
        raise RuntimeError("cudaErrorInvalidResourceHandle: an event was not recorded")
    if not (start_event._timing and end_event._timing):
        raise RuntimeError("cudaErrorInvalidResourceHandle: an event was created with disable_timing=True")
    return (end_event._time - start_event._time) * 1000.0


def get_current_stream(device_id=None):
    return _stream_stack()[-1]


class MemoryPool:
    """The default pool counts the bytes of live fake arrays (``used_bytes``) and of freed ones it would keep
    cached (``free_bytes``) until ``free_all_blocks``; other pools (e.g. a CUDA graph's private one) count none."""

    def __init__(self, allocator=None):
        self._default = False

    def malloc(self, size):
        raise NotImplementedError("fake cupy: MemoryPool.malloc hands out no device pointers")

    def used_bytes(self) -> int:
        return _core._Memory.live if self._default else 0

    def total_bytes(self) -> int:
        return self.used_bytes() + self.free_bytes()

    def free_bytes(self) -> int:
        return _core._Memory.cached if self._default else 0

    def free_all_blocks(self, stream=None):
        if self._default:
            _core._Memory.cached = 0

    def n_free_blocks(self) -> int:
        return 1 if self.free_bytes() else 0

    def get_limit(self) -> int:
        return getattr(self, "_limit", 0)

    def set_limit(self, size=None, fraction=None):
        """As CuPy's: a byte cap, or ``fraction`` of the device's memory (0: no cap); the fake only records it."""
        if size is not None and fraction is not None:
            raise ValueError("size and fraction cannot be specified at one time")
        self._limit = int(fraction * 80 * 2**30) if fraction is not None else int(size or 0)


class PinnedMemoryPool(MemoryPool):
    pass


_POOL = MemoryPool()
_POOL._default = True
_allocators = _threading.local()


@_contextlib.contextmanager
def using_allocator(allocator=None):
    """Fake arrays are NumPy's: the allocator is only remembered for the block (as CuPy's is thread-local)."""
    previous = getattr(_allocators, "current", None)
    _allocators.current = allocator
    try:
        yield
    finally:
        _allocators.current = previous


class _MemoryHookModule:
    MemoryHook = _MemoryHook


memory_hook = _MemoryHookModule()


def _device_properties(index: int) -> dict:
    Device(index)
    return {"name": b"Fake CuPy Device (NumPy)", "totalGlobalMem": 80 * 2**30, "major": 9, "minor": 0,
            "multiProcessorCount": 1}


runtime = _SimpleNamespace(
    getDeviceCount=lambda: 1,
    getDevice=lambda: _current[0],
    setDevice=lambda index: Device(index).use(),
    deviceSynchronize=lambda: None,
    getDeviceProperties=_device_properties,
    memGetInfo=lambda: (80 * 2**30 - _core._Memory.live - _core._Memory.cached, 80 * 2**30),
    streamCaptureModeGlobal=0,
    streamCaptureModeThreadLocal=1,
    streamCaptureModeRelaxed=2,
    runtimeGetVersion=lambda: 12080,
    driverGetVersion=lambda: 12080,
)
assert set(vars(runtime)) <= _NAMES["cupy.cuda.runtime"], "fake cupy.cuda.runtime offers a name CuPy lacks"


def is_available() -> bool:
    return True
