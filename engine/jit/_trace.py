"""``engine.jit.trace``: capture a module or function into a ``ScriptModule``."""

from __future__ import annotations

import warnings

from engine.fx import _state
from engine.fx.tracer import TracerWarning, capture
from engine.jit._script import ScriptFunction, ScriptModule, TopLevelTracedModule
from engine.tensor import Tensor


class TracingCheckError(Exception):
    """Raised when ``check_trace`` finds the trace does not run."""


def is_tracing() -> bool:
    """Whether a trace is recording right now."""
    return _state.STATE.tracer is not None


def trace(func, example_inputs=None, optimize=None, check_trace: bool = True, check_inputs=None,
          check_tolerance: float = 1e-5, strict: bool = True, _force_outplace: bool = False,
          _module_class=None, _compilation_unit=None, example_kwarg_inputs=None, _store_inputs: bool = True):
    """Run ``func`` once on ``example_inputs``, record its ops, and return a module running that graph.

    Args:
        func: an ``nn.Module`` (its ``forward`` is traced) or a function.
        example_inputs: a tensor or a tuple of tensors (nested tuples/lists of tensors allowed).
        check_trace: re-run the trace and the original on the inputs and warn if they differ.
        check_inputs: more input tuples to check the trace with.
        check_tolerance: relative tolerance of that check.
        strict: refuse a list or dict output (its structure may depend on the inputs).
        example_kwarg_inputs: keyword inputs, as a dict (instead of or with ``example_inputs``).

    Shapes read from traced tensors (``x.shape[0]``, ``x.size(1)``) stay symbolic, so a trace taken
    at batch 4 runs at batch 7. Python control flow on tensor values is fixed at the example
    inputs' values, with a ``TracerWarning``.

    Example:
        >>> traced = engine.jit.trace(nn.Linear(3, 2), engine.randn(4, 3))
        >>> traced(engine.randn(7, 3)).shape
        engine.Size([7, 2])
    """
    from engine.nn import Module

    if isinstance(func, ScriptModule):
        return func
    if example_inputs is None and example_kwarg_inputs is None:
        raise RuntimeError("engine.jit.trace needs example_inputs (or example_kwarg_inputs) to run the function on")
    args = () if example_inputs is None else (example_inputs,) if isinstance(example_inputs, Tensor) \
        else tuple(example_inputs)
    kwargs = dict(example_kwarg_inputs or {})
    graph, state, constants, _ = capture(func, args, kwargs, strict=strict)
    if isinstance(func, Module):
        traced = TopLevelTracedModule(func, graph, type(func).__name__, constants)
    else:
        traced = ScriptFunction(state, graph, getattr(func, "__name__", "function"), constants)
    if check_trace:
        for inputs in [args, *[_as_tuple(c) for c in (check_inputs or [])]]:
            _check(func, traced, inputs, kwargs, check_tolerance)
    return traced


def _as_tuple(inputs) -> tuple:
    return (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)


def _check(func, traced, args, kwargs, rtol: float) -> None:
    from engine.autograd.grad_mode import no_grad

    with no_grad():
        expected = func(*args, **kwargs)
        try:
            got = traced(*args, **kwargs)
        except Exception as exc:
            raise TracingCheckError(f"Tracing failed sanity checks! The trace does not run on the check inputs: "
                                    f"{type(exc).__name__}: {exc}") from exc
    for i, (e, g) in enumerate(zip(_flatten(expected), _flatten(got), strict=False)):
        if isinstance(e, Tensor) and isinstance(g, Tensor):
            same = e.shape == g.shape and bool((e.double() - g.double()).abs().le(
                1e-5 + rtol * e.double().abs()).all()) if e.numel() else e.shape == g.shape
            if not same:
                warnings.warn(f"Output nr {i + 1}. of the traced function does not match the corresponding output "
                              "of the Python function. The trace may depend on Python control flow or on random "
                              "ops.", TracerWarning, stacklevel=3)


def _flatten(value) -> list:
    if isinstance(value, tuple | list):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flatten(v)]
    return [value]


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """Not supported: scripting compiles Python source. Use ``engine.jit.trace`` (or ``engine.export.export``)."""
    if isinstance(obj, ScriptModule):
        return obj
    name = getattr(obj, "__name__", type(obj).__name__)
    raise NotImplementedError(
        f"engine.jit.script({name}) is not supported: this engine does not compile Python source. Use "
        "engine.jit.trace(model, example_inputs) instead (Python control flow is recorded as it runs on the "
        "example inputs) or engine.export.export(model, args).")
