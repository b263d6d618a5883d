"""``cupy.cuda`` (fake): one device, streams and events that time on the host, a counting memory pool."""

from __future__ import annotations

import time as _time
from types import SimpleNamespace as _SimpleNamespace

from fake_cupy._core import NAMES as _NAMES

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
    null: Stream

    def __init__(self, null=False, non_blocking=False, ptr=None):
        self.ptr = 0 if null else id(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        return None

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        return None

    def use(self):
        return self

    @property
    def done(self) -> bool:
        return True


Stream.null = Stream(null=True)


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._time: float | None = None

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
    return (end_event._time - start_event._time) * 1000.0


def get_current_stream(device_id=None):
    return Stream.null


class MemoryPool:
    """Reports the bytes of live fake arrays is out of reach; counts stay zero, as after ``free_all_blocks``."""

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_bytes(self) -> int:
        return 0

    def free_all_blocks(self, stream=None):
        return None

    def n_free_blocks(self) -> int:
        return 0

    def get_limit(self) -> int:
        return 0

    def set_limit(self, size=None, fraction=None):
        return None


class PinnedMemoryPool(MemoryPool):
    pass


_POOL = MemoryPool()


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
    memGetInfo=lambda: (80 * 2**30, 80 * 2**30),
    runtimeGetVersion=lambda: 12080,
    driverGetVersion=lambda: 12080,
)
assert set(vars(runtime)) <= _NAMES["cupy.cuda.runtime"], "fake cupy.cuda.runtime offers a name CuPy lacks"


def is_available() -> bool:
    return True
