"""The one global of graph capture: the active tracer (None when nothing records)."""

from __future__ import annotations


class _State:
    __slots__ = ("tracer",)

    def __init__(self):
        self.tracer = None


STATE = _State()
