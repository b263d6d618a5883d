"""``engine.cuda.CUDAGraph`` and the ``graph()`` capture context, over CuPy's stream capture.

A captured graph replays the kernels recorded between ``capture_begin`` and ``capture_end`` on the same memory:
inputs are copied into the static tensors used during capture, outputs are read from the static tensors it made.
As in PyTorch, memory allocated during capture comes from a private pool that the graph keeps, so later work
never reuses (and overwrites) it between replays.
"""

from __future__ import annotations

from typing import Any

from engine.cuda._lazy import cupy
from engine.cuda.streams import Stream, current_stream, stream

# NOTE: PyTorch's default "global" is captured in CUDA's relaxed mode: CuPy's memory pool may grow with cudaMalloc
# during capture, which the global and thread-local modes refuse (CuPy's own begin_capture defaults to relaxed).
_MODES = {"global": "streamCaptureModeRelaxed", "thread_local": "streamCaptureModeThreadLocal",
          "relaxed": "streamCaptureModeRelaxed"}


class CUDAGraph:
    """A CUDA graph: capture a sequence of GPU work once, replay it with one launch.

    Example:
        >>> g = engine.cuda.CUDAGraph()  # doctest: +SKIP
        >>> static_x = engine.zeros(8, device="cuda")  # doctest: +SKIP
        >>> with engine.cuda.graph(g):  # doctest: +SKIP
        ...     static_y = static_x * 2
        >>> static_x.copy_(engine.ones(8)); g.replay()  # static_y now holds 2s  # doctest: +SKIP
    """

    def __init__(self, keep_graph: bool = False):
        cupy()
        self._graph: Any = None
        self._pool: Any = None
        self._stream: Any = None
        self._allocator: Any = None
        self.keep_graph = keep_graph

    def capture_begin(self, pool=None, capture_error_mode: str = "global") -> None:
        """Start capturing the current stream's work (which must not be the default stream)."""
        cp = cupy()
        if self._stream is not None:
            raise RuntimeError("This CUDAGraph is already capturing")
        if self._graph is not None:
            raise RuntimeError("This CUDAGraph has already been captured; call reset() before capturing again")
        if capture_error_mode not in _MODES:
            raise ValueError(f"capture_error_mode must be one of {sorted(_MODES)}, got {capture_error_mode!r}")
        stream_now = cp.cuda.get_current_stream()
        if stream_now.ptr in (0, 1):  # the legacy default stream (0, or cudaStreamLegacy)
            raise RuntimeError("CUDA graphs must be captured on a non-default stream. (However, after capture, "
                               "it's ok to replay them on the default stream.)")
        self._pool = pool if pool is not None else cp.cuda.MemoryPool()
        self._allocator = cp.cuda.using_allocator(self._pool.malloc)
        self._allocator.__enter__()
        self._stream = stream_now
        try:
            stream_now.begin_capture(mode=getattr(cp.cuda.runtime, _MODES[capture_error_mode]))
        except BaseException:
            self._end_allocator()
            self._stream = None
            raise

    def capture_end(self) -> None:
        if self._stream is None:
            raise RuntimeError("capture_end() called without capture_begin()")
        try:
            self._graph = self._stream.end_capture()
        finally:
            self._stream = None
            self._end_allocator()

    def _end_allocator(self) -> None:
        allocator, self._allocator = self._allocator, None
        if allocator is not None:
            allocator.__exit__(None, None, None)

    def replay(self) -> None:
        """Launch the captured work on the current stream."""
        if self._graph is None:
            raise RuntimeError("Called CUDAGraph.replay() without a captured graph (capture it first)")
        self._graph.launch(cupy().cuda.get_current_stream())

    def reset(self) -> None:
        """Drop the captured graph and its private memory."""
        self._graph = None
        self._pool = None

    def pool(self):
        """The private memory pool of this graph, to share with another capture (``graph(g2, pool=g1.pool())``)."""
        if self._pool is None:
            raise RuntimeError("pool() is available only after capture_begin()")
        return self._pool

    def __repr__(self) -> str:
        return f"<engine.cuda.CUDAGraph captured={self._graph is not None}>"


class graph:
    """``with engine.cuda.graph(g):`` captures the block into ``g`` on a side stream, as ``torch.cuda.graph``.

    Args:
        cuda_graph: the ``CUDAGraph`` to fill.
        pool: a memory pool to share (``other_graph.pool()``); default a private one.
        stream: the stream to capture on (default: a fresh side stream).
        capture_error_mode: ``"global"`` (default), ``"thread_local"`` or ``"relaxed"``.
    """

    def __init__(self, cuda_graph: CUDAGraph, pool=None, stream: Stream | None = None,
                 capture_error_mode: str = "global"):
        if not isinstance(cuda_graph, CUDAGraph):
            raise TypeError(f"graph() expects an engine.cuda.CUDAGraph, got {type(cuda_graph).__name__}")
        self.cuda_graph = cuda_graph
        self.pool = pool
        self.capture_stream = stream if stream is not None else Stream()
        self.capture_error_mode = capture_error_mode
        self._context: Any = None

    def __enter__(self):
        from engine.cuda import synchronize

        synchronize()  # NOTE: work queued before capture must not leak into (or race with) the graph
        self.capture_stream.wait_stream(current_stream())
        self._context = stream(self.capture_stream)
        self._context.__enter__()
        try:
            self.cuda_graph.capture_begin(self.pool, capture_error_mode=self.capture_error_mode)
        except BaseException:
            self._context.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.cuda_graph.capture_end()
        finally:
            self._context.__exit__(*exc)
        current_stream().wait_stream(self.capture_stream)
        return False


def graph_pool_handle():
    """A memory pool that several graphs can share (``graph(g, pool=handle)``), as ``torch.cuda.graph_pool_handle``."""
    return cupy().cuda.MemoryPool()


def is_current_stream_capturing() -> bool:
    """True while the current stream is being captured into a graph."""
    stream_now = cupy().cuda.get_current_stream()
    return stream_now.ptr not in (0, 1) and bool(stream_now.is_capturing())
