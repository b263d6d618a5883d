"""``engine.cuda.Stream``, ``Event``, ``stream()``, ``current_stream``/``default_stream``, over CuPy's own."""

from __future__ import annotations

from engine.cuda._lazy import cupy, device_index


class Stream:
    """A CUDA stream: kernels queued on it run in order, concurrently with other streams.

    Args:
        device: the device to create it on (default: the current one).
        priority: lower is higher priority (CUDA's convention); 0 is the default.

    Example:
        >>> s = engine.cuda.Stream()  # doctest: +SKIP
        >>> with engine.cuda.stream(s):  # doctest: +SKIP
        ...     y = x @ x
        >>> engine.cuda.current_stream().wait_stream(s)  # doctest: +SKIP
    """

    def __init__(self, device=None, priority: int = 0, **kwargs):
        if kwargs:
            raise TypeError(f"Stream() got unexpected keyword arguments {sorted(kwargs)}")
        cp = cupy()
        self._index = device_index(device)
        with cp.cuda.Device(self._index):
            # NOTE: non-blocking, as PyTorch's streams: no implicit sync with the legacy default stream
            self._cp = cp.cuda.Stream(non_blocking=True, **({"priority": int(priority)} if priority else {}))
        self.priority = int(priority)

    @classmethod
    def _wrap(cls, cp_stream, index: int) -> Stream:
        self = object.__new__(cls)
        self._cp, self._index, self.priority = cp_stream, index, 0
        return self

    @property
    def device(self):
        from engine.device import device

        return device("cuda", self._index)

    @property
    def cuda_stream(self) -> int:
        """The raw ``cudaStream_t`` as an int (0 for the legacy default stream)."""
        return int(self._cp.ptr)

    def query(self) -> bool:
        """True when all work queued on the stream has finished."""
        return bool(self._cp.done)

    def synchronize(self) -> None:
        self._cp.synchronize()

    def wait_event(self, event: Event) -> None:
        """Make later work on this stream wait for ``event``."""
        self._cp.wait_event(event._cp)

    def wait_stream(self, stream: Stream) -> None:
        """Make later work on this stream wait for the work queued so far on ``stream``."""
        self.wait_event(stream.record_event())

    def record_event(self, event: Event | None = None) -> Event:
        event = Event() if event is None else event
        event.record(self)
        return event

    def __enter__(self):
        self._context = stream(self)
        return self._context.__enter__()

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and other.cuda_stream == self.cuda_stream and other._index == self._index

    def __hash__(self) -> int:
        return hash((self.cuda_stream, self._index))

    def __repr__(self) -> str:
        return f"<engine.cuda.Stream device=cuda:{self._index} cuda_stream={self.cuda_stream:#x}>"


class ExternalStream(Stream):
    """A stream created elsewhere (another library), named by its raw pointer."""

    def __init__(self, stream_ptr: int, device=None):
        cp = cupy()
        self._index = device_index(device)
        self._cp = cp.cuda.ExternalStream(int(stream_ptr), self._index)
        self.priority = 0


class Event:
    """A marker in a stream, for synchronisation and timing.

    Example:
        >>> start, end = engine.cuda.Event(enable_timing=True), engine.cuda.Event(enable_timing=True)
        >>> start.record(); y = x @ x; end.record()  # doctest: +SKIP
        >>> end.synchronize(); start.elapsed_time(end)  # milliseconds  # doctest: +SKIP
    """

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):
        cp = cupy()
        self.enable_timing, self.blocking, self.interprocess = bool(enable_timing), bool(blocking), bool(interprocess)
        self._cp = cp.cuda.Event(block=self.blocking, disable_timing=not self.enable_timing,
                                 interprocess=self.interprocess)
        self._recorded = False

    def record(self, stream: Stream | None = None) -> None:
        """Record the event on ``stream`` (default: the current stream)."""
        stream = current_stream() if stream is None else stream
        self._cp.record(stream._cp)
        self._recorded = True

    def wait(self, stream: Stream | None = None) -> None:
        """Make later work on ``stream`` (default: the current one) wait for this event."""
        (current_stream() if stream is None else stream).wait_event(self)

    def query(self) -> bool:
        return bool(self._cp.done)

    def synchronize(self) -> None:
        """Block the host until the work before this event has finished."""
        self._cp.synchronize()

    def elapsed_time(self, end_event: Event) -> float:
        """Milliseconds from this event to ``end_event`` (both recorded, both with ``enable_timing=True``)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if not (self._recorded and end_event._recorded):
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        return float(cupy().cuda.get_elapsed_time(self._cp, end_event._cp))

    def __repr__(self) -> str:
        return f"<engine.cuda.Event enable_timing={self.enable_timing} recorded={self._recorded}>"


class StreamContext:
    """``with engine.cuda.stream(s):`` queues the block's work on ``s`` (None: no change)."""

    def __init__(self, stream: Stream | None):
        self.stream = stream
        self._entered: list = []

    def __enter__(self):
        if self.stream is None:
            self._entered.append(None)
            return None
        cp = cupy()
        device = cp.cuda.Device(self.stream._index)
        device.__enter__()
        self.stream._cp.__enter__()
        self._entered.append(device)
        return self.stream

    def __exit__(self, *exc):
        device = self._entered.pop()
        if device is not None and self.stream is not None:
            self.stream._cp.__exit__(*exc)
            device.__exit__(*exc)
        return False


def stream(stream: Stream | None) -> StreamContext:
    """A context in which work is queued on ``stream``; ``stream(None)`` changes nothing."""
    if stream is not None and not isinstance(stream, Stream):
        raise TypeError(f"engine.cuda.stream() expects an engine.cuda.Stream or None, got {type(stream).__name__}")
    return StreamContext(stream)


def current_stream(device=None) -> Stream:
    """The stream work is queued on now, for ``device`` (default: the current device)."""
    cp = cupy()
    index = device_index(device)
    return Stream._wrap(cp.cuda.get_current_stream(index), index)


def default_stream(device=None) -> Stream:
    """The device's default (legacy null) stream."""
    cp = cupy()
    return Stream._wrap(cp.cuda.Stream.null, device_index(device))


def set_stream(stream: Stream) -> None:
    """Make ``stream`` current (prefer the ``stream()`` context)."""
    stream._cp.use()
