"""Compiler backends by name (as ``torch._dynamo.list_backends`` / ``register_backend``).

A backend is ``backend(gm: engine.fx.GraphModule, example_inputs: list[Tensor]) -> callable`` whose
result, called with the graph's inputs, returns what ``gm(*inputs)`` returns (a tuple of tensors).
"""

from __future__ import annotations

import importlib

from engine._dynamo.replay import make_runner

_BACKENDS: dict = {}
_TAGS: dict = {}


def register_backend(compiler_fn=None, name: str | None = None, tags=()):
    """Register ``compiler_fn`` under ``name`` (its ``__name__`` by default); usable as a decorator."""
    if compiler_fn is None:
        return lambda fn: register_backend(fn, name=name, tags=tags)
    if not callable(compiler_fn):
        raise TypeError(f"a backend must be callable, got {type(compiler_fn).__name__}")
    key = name or compiler_fn.__name__
    _BACKENDS[key] = compiler_fn
    _TAGS[key] = tuple(tags)
    return compiler_fn


def list_backends(exclude_tags=("debug", "experimental")) -> list[str]:
    """The registered backend names (debug backends left out unless ``exclude_tags=()``)."""
    excluded = set(exclude_tags or ())
    return sorted(k for k in _BACKENDS if not excluded.intersection(_TAGS[k]))


def lookup_backend(compiler_fn):
    """The backend callable for a name or a callable; an unknown name raises ``InvalidBackend``."""
    if callable(compiler_fn):
        return compiler_fn
    if not isinstance(compiler_fn, str):
        raise TypeError(f"backend must be a string or a callable, got {type(compiler_fn).__name__}")
    try:
        return _BACKENDS[compiler_fn]
    except KeyError:
        from engine._dynamo.exc import InvalidBackend

        raise InvalidBackend(compiler_fn) from None


@register_backend(tags=("debug",))
def eager(gm, example_inputs):
    """Run the captured graph as is (each op's eager kernel, no fusion)."""
    return make_runner(gm)


@register_backend(name="aot_eager", tags=("debug",))
def aot_eager(gm, example_inputs):
    """The joint forward+backward graph (``engine.compile`` builds it before any backend), run unfused."""
    return make_runner(gm)


def _inductor_compile_fx():
    try:
        module = importlib.import_module("engine._inductor")
    except ImportError:
        return None
    return getattr(module, "compile_fx", None)


@register_backend
def inductor(gm, example_inputs, mode=None, options=None):
    """Fused kernels from ``engine._inductor.compile_fx``; the graph run unfused where that is absent."""
    compile_fx = _inductor_compile_fx()
    if compile_fx is None:
        return make_runner(gm)
    kwargs = {"mode": mode}
    if options:
        kwargs["options"] = options
    try:
        return compile_fx(gm, example_inputs, **kwargs)
    except TypeError as exc:
        if "options" not in str(exc) or "options" not in kwargs:
            raise
        return compile_fx(gm, example_inputs, mode=mode)
