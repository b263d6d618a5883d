"""The one global every op wrapper reads: the active tracer (graph capture) and the active profiler's
recorder (engine.profiler); each None when nothing records."""

from __future__ import annotations


class _State:
    __slots__ = ("profiler", "tracer")

    def __init__(self):
        self.tracer = None
        self.profiler = None


STATE = _State()
