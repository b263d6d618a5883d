"""TorchScript's source annotations: under tracing they change nothing, so they return their input."""

from __future__ import annotations

from typing import Final  # noqa: F401 - re-exported as engine.jit.Final


def ignore(drop=False, **kwargs):
    """``@engine.jit.ignore`` / ``@engine.jit.ignore(drop=True)``: leave a function to Python (a no-op here)."""
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn):
    """``@engine.jit.unused``: a no-op under tracing."""
    return fn


def export(fn):
    """``@engine.jit.export``: a no-op under tracing."""
    return fn


def annotate(the_type, the_value):
    """``engine.jit.annotate(List[int], [])``: returns the value."""
    return the_value
