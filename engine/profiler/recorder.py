"""The collector behind an active ``engine.profiler.profile``: the op wrapper (engine/fx/registry.py) and
``record_function`` open and close events here while ``engine.fx._state.STATE.profiler`` points at one.

An op's event is named ``engine::<op name>``: the last part of its registry name, dunders stripped
(``engine.nn.functional.linear`` -> ``engine::linear``, ``Tensor.__add__`` -> ``engine::add``,
``Tensor.add_`` -> ``engine::add_``), as PyTorch names its ``aten::`` ops. Parents are the events open on
the same thread when an event opens, so nesting is exact and self time is total less the children's. An op
called directly inside an event of the same name (``Tensor.sum`` delegating to ``engine.sum``) is one event.
"""

from __future__ import annotations

import threading
import time

from engine.profiler.events import EventList, FunctionEvent

_NAMES: dict[str, str] = {}


def event_name(registry_name: str) -> str:
    """``engine::<short op name>`` for a registry name (cached: called on every profiled op)."""
    name = _NAMES.get(registry_name)
    if name is None:
        short = registry_name.rsplit(".", 1)[-1]
        if short.startswith("__") and short.endswith("__"):
            short = short[2:-2]
        name = _NAMES[registry_name] = f"engine::{short}"
    return name


def _shape_of(value):
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, type):
        return list(shape)
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        return [list(v.shape) for v in value]
    return []


class Recorder:
    """Events of one recording window; ``cupy`` (when CUDA activity is on a GPU) adds device times."""

    def __init__(self, *, record_shapes: bool = False, cupy=None):
        self.record_shapes = record_shapes
        self.events: list[FunctionEvent] = []
        self._stacks: dict[int, list[FunctionEvent]] = {}
        self._cupy = cupy
        self._marks: dict[int, tuple] = {}  # event id -> (begin, end) CuPy events
        self._start_us = time.perf_counter_ns() / 1e3
        self._device_start = self._mark() if cupy is not None else None

    def call_op(self, registry_name: str, fn, args, kwargs):
        name = event_name(registry_name)
        stack = self._stacks.get(threading.get_ident())
        if stack and stack[-1].name == name:  # one spelling delegating to another (Tensor.sum -> engine.sum)
            return fn(*args, **kwargs)
        event = self.open(name, args, kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            self.close(event)

    def open(self, name: str, args=(), kwargs=None, *, user_annotation: bool = False) -> FunctionEvent:
        thread = threading.get_ident()
        stack = self._stacks.setdefault(thread, [])
        shapes = None
        if self.record_shapes:
            shapes = [_shape_of(a) for a in args] + [_shape_of(v) for v in (kwargs or {}).values()]
        event = FunctionEvent(len(self.events), name, thread, time.perf_counter_ns() / 1e3, input_shapes=shapes,
                              is_user_annotation=user_annotation)
        if stack:
            event.cpu_parent = stack[-1]
            stack[-1].cpu_children.append(event)
        stack.append(event)
        self.events.append(event)
        if self._cupy is not None:
            self._marks[event.id] = (self._mark(), None)
        return event

    def close(self, event: FunctionEvent) -> None:
        if event.end_us:
            return
        if self._cupy is not None:
            self._marks[event.id] = (self._marks[event.id][0], self._mark())
        event.end_us = time.perf_counter_ns() / 1e3
        stack = self._stacks.get(event.thread, [])
        if event in stack:
            del stack[stack.index(event):]

    def finish(self, use_device: str | None) -> EventList:
        """Close what is still open (a range spanning the stop) and read the device times; the events."""
        for stack in list(self._stacks.values()):
            for event in reversed(stack):
                self.close(event)
        if self._cupy is not None:
            elapsed = self._cupy.cuda.get_elapsed_time
            for event in self.events:
                begin, end = self._marks[event.id]
                end.synchronize()
                event.device_time_total = elapsed(begin, end) * 1e3
                event.device_start_us = self._start_us + elapsed(self._device_start, begin) * 1e3
        return EventList(self.events, use_device=use_device)

    def _mark(self):
        mark = self._cupy.cuda.Event()
        mark.record()
        return mark
