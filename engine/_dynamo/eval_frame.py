"""``engine.compile``'s runtime: a guarded cache of captured graphs per compiled callable, and ``OptimizedModule``.

The first call with new guards captures (the call runs for real under the tracer, so its result is
the eager result), hands the graph to the backend and keeps the compiled callable; later calls
whose guards match replay it. A graph break marks the entry eager: that frame then runs as plain
Python. Past ``config.cache_size_limit`` entries new guard sets run eagerly, as PyTorch does.
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref
from typing import Any

from engine._dynamo import config
from engine._dynamo.capture import Captured, DynamoTracer, _active, capture_call, rebuild
from engine._dynamo.exc import BackendCompilerFailed, Unsupported
from engine._dynamo.guards import StateGuard, call_key, describe
from engine.fx import _state
from engine.nn.modules.module import Module

_COMPILED: weakref.WeakSet = weakref.WeakSet()
_STATE = _state.STATE
MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class CacheEntry:
    """One captured graph and its compiled form, or an eager marker after a graph break."""

    __slots__ = (
        "_rebuild",
        "backend_fn",
        "captured",
        "eager",
        "graph_module",
        "guard_key",
        "guards",
        "runner",
        "state_guard",
    )

    def __init__(self, captured: Captured, state_guard: StateGuard, guard_key: tuple, eager: bool):
        self.captured = captured
        self.state_guard = state_guard
        self.guard_key = guard_key
        self.eager = eager
        self.runner: Any = None
        self.graph_module: Any = None
        self.guards: list = []
        template, outputs = captured.template, captured.outputs
        if template is outputs[0] if len(outputs) == 1 else False:
            self._rebuild = _first
        elif isinstance(template, tuple) and type(template) is tuple and list(template) == outputs:
            self._rebuild = tuple
        else:
            self._rebuild = functools.partial(_generic_rebuild, template, outputs)
        captured.result = None  # NOTE: do not keep the first call's tensors alive

    def run(self, leaves: list):
        return self._rebuild(self.runner(*leaves))


def _first(outs):
    return outs[0]


def _generic_rebuild(template, outputs, outs):
    return rebuild(template, dict(zip(outputs, outs, strict=True)))


class CompiledFunction:
    """A callable compiled by ``engine.compile``: guards, a cache of captured graphs and the backend."""

    def __init__(self, fn, *, root=None, backend="inductor", fullgraph: bool = False, dynamic=None, mode=None,
                 options=None):
        from engine._dynamo.backends import lookup_backend

        self._orig_fn = fn
        self._root = root
        self._settings = {"backend": backend, "fullgraph": fullgraph, "dynamic": dynamic, "mode": mode,
                          "options": options}
        self._backend_name = backend if isinstance(backend, str) else getattr(backend, "__name__", "callable")
        self._backend = lookup_backend(backend)
        self._fullgraph = fullgraph
        self._dynamic = dynamic
        self._mode = mode
        self._options = options
        self._cache: dict = {}
        self._static_cache: dict = {}
        self._count = 0
        self._warned = False
        self._compiling = False
        self._torchdynamo_orig_callable = fn
        from engine._dynamo import backends

        # NOTE: as in PyTorch, "eager" and custom backends get the graph with autograd left to replay;
        # "aot_eager" and "inductor" get backward passes traced into graph ops.
        self._joint = self._backend is backends.aot_eager or self._backend is backends.inductor
        _COMPILED.add(self)

    # ----- the call path ----------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if _STATE.tracer is not None or self._compiling:  # inside another capture: inline the Python
            return self._orig_fn(*args, **kwargs)
        leaves: list = []
        dynamic = self._dynamic is True
        key = call_key(args, kwargs, leaves, dynamic)
        entries = self._cache.get(key)
        if entries is not None:
            for entry in entries:
                if entry.state_guard.check():
                    if entry.eager:
                        return self._orig_fn(*args, **kwargs)
                    return entry._rebuild(entry.runner(*leaves))
        if dynamic:
            entry = self._lookup(self._static_cache.get(call_key(args, kwargs, [], False)))
            if entry is not None:
                return self._orig_fn(*args, **kwargs) if entry.eager else entry.run(leaves)
        return self._compile_and_call(key, leaves, args, kwargs)

    @staticmethod
    def _lookup(entries):
        if entries:
            for entry in entries:
                if entry.state_guard.check():
                    return entry
        return None

    def _compile_and_call(self, key, leaves, args, kwargs):
        from engine._dynamo import backends

        limit = min(config.cache_size_limit, config.recompile_limit)
        if self._count >= limit:
            if not self._warned:
                self._warned = True
                warnings.warn(f"engine._dynamo hit config.cache_size_limit ({limit})\n   function: "
                              f"{_name(self._orig_fn)!r}\nto diagnose recompilation issues, see "
                              "engine._dynamo.explain; this function now runs eagerly for new inputs.",
                              UserWarning, stacklevel=3)
            return self._orig_fn(*args, **kwargs)
        self._count += 1
        dynamic = self._dynamic is True
        self._compiling = True
        try:
            captured = capture_call(self._orig_fn, args, kwargs, root=self._root, dynamic=dynamic,
                                    joint=self._joint and config.capture_autograd,
                                    redo=self._backend is not backends.eager)
        finally:
            self._compiling = False
        result = captured.result
        if dynamic and captured.specialized:  # a symbolic size steered Python: this graph holds for these shapes
            key = call_key(args, kwargs, [], False)
            cache = self._static_cache
        else:
            cache = self._cache
        state_guard = StateGuard(captured.modules, list(captured.state.values()))
        if captured.breaks:
            if self._fullgraph:
                raise Unsupported(_unsupported_message(captured.breaks))
            entry = CacheEntry(captured, state_guard, key, eager=True)
        else:
            aot = captured.aot
            first = (aot.output_examples, aot.saved_examples) if aot is not None else None
            entry = CacheEntry(captured, state_guard, key, eager=False)
            self._build(entry, leaves)
            snapshot, captured.snapshot = captured.snapshot, None
            if snapshot is not None and self._backend is not backends.eager:
                # NOTE: the compiled program may round differently from the eager kernels the capture ran:
                # undo the captured call's effects and let the program compute the first result too.
                snapshot.restore()
                result = entry.run(leaves)
            elif first is not None and all(t is not None for t in (*first[0], *first[1])):
                result = entry._rebuild(entry.runner.first_call(leaves, *first))
            if snapshot is not None:
                snapshot.release()
            if aot is not None:
                aot.output_examples, aot.saved_examples = [], []
        entry.guards = describe(key, captured.input_names, dynamic and cache is self._cache) + state_guard.describe()
        cache.setdefault(key, []).append(entry)
        return result

    def _build(self, entry: CacheEntry, leaves: list) -> None:
        from engine._dynamo import backends, joint
        from engine.fx.graph_module import GraphModule

        captured = entry.captured
        gm = GraphModule(dict(captured.state), captured.graph, class_name="GraphModule")
        entry.graph_module = gm
        if captured.mode == "aot":
            aot = captured.aot
            backward = GraphModule(dict(captured.state), aot.backward, class_name="GraphModule")
            runner = joint.AOTRuntime(self._compile_graph(gm, leaves, self._backend),
                                      self._compile_graph(backward, [*aot.saved_examples, *aot.tangent_examples],
                                                          self._backend), aot, captured.state, eager=gm)
            aot.tangent_examples = []
        elif captured.mode == "joint":
            runner = joint.no_grad_runner(self._compile_graph(gm, leaves, self._backend))
        else:
            backend = self._backend
            if backend is backends.inductor and captured.needs_autograd:
                # NOTE: fused kernels compute on arrays; a graph that must build autograd history runs unfused.
                backend = backends.eager
            runner = self._compile_graph(gm, leaves, backend)
        if captured.switches_modes:
            from engine._dynamo.graph_ops import keeping_modes

            runner = keeping_modes(runner)
        entry.runner = runner

    def _compile_graph(self, gm, example_inputs: list, backend):
        from engine._dynamo import backends

        if backend is backends.inductor and _has_tensor_subclass(gm.graph):
            backend = backends.eager  # NOTE: a tensor subclass (a quantized tensor) carries more than its array
        try:
            if backend is backends.inductor:
                runner = backend(gm, list(example_inputs), mode=self._mode, options=self._options)
            else:
                runner = backend(gm, list(example_inputs))
        except Exception as exc:
            if not config.suppress_errors:
                raise BackendCompilerFailed(self._backend_name, exc) from exc
            warnings.warn(f"backend {self._backend_name!r} failed, running the graph eagerly: {exc}",
                          UserWarning, stacklevel=5)
            runner = backends.eager(gm, list(example_inputs))
        return runner if runner is not None else gm.forward

    # ----- introspection ------------------------------------------------------------------------------------
    def _entries(self) -> list[CacheEntry]:
        return [e for entries in (*self._cache.values(), *self._static_cache.values()) for e in entries]

    def _reset(self) -> None:
        self._cache.clear()
        self._static_cache.clear()
        self._count = 0
        self._warned = False

    def __reduce__(self):
        # NOTE: copies and pickles carry the function and settings, not the captured graphs (they capture anew)
        return (_rebuild_compiled, (self._orig_fn, self._root, self._settings))

    def __get__(self, obj, objtype=None):  # a compiled function used as a method decorator
        if obj is None:
            return self
        return functools.partial(self, obj)


def _has_tensor_subclass(graph) -> bool:
    return any("tensor_type" in n.meta for n in graph.nodes)


def _rebuild_compiled(fn, root, settings: dict) -> CompiledFunction:
    compiled = CompiledFunction(fn, root=root, **settings)
    functools.update_wrapper(compiled, fn, updated=())
    return compiled


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _unsupported_message(breaks) -> str:
    first = breaks[0]
    where = ""
    if first.user_stack:
        frame = first.user_stack[-1]
        where = f"\n  File \"{frame.filename}\", line {frame.lineno}, in {frame.name}"
    more = f" (and {len(breaks) - 1} more graph breaks)" if len(breaks) > 1 else ""
    return f"fullgraph=True found a graph break: {first.reason}{more}{where}"


def is_compiling() -> bool:
    """Whether ``engine.compile`` is capturing right now (as ``torch.compiler.is_compiling``)."""
    return isinstance(_state.STATE.tracer, DynamoTracer)


def disable(fn=None, recursive: bool = True, *, reason: str | None = None):
    """Run ``fn`` eagerly even inside a compiled function: a graph break (as ``torch.compiler.disable``)."""
    if fn is None:
        return functools.partial(disable, recursive=recursive, reason=reason)

    @functools.wraps(fn)
    def disabled(*args, **kwargs):
        tracer = _active()
        if tracer is None:
            return fn(*args, **kwargs)
        tracer.graph_break(f"call to a function disabled by engine.compiler.disable: {reason or fn.__qualname__}")
        return tracer._run(fn, args, kwargs)

    disabled._engine_disabled = True  # type: ignore[attr-defined]
    return disabled


def reset() -> None:
    """Forget every captured graph of every compiled function (they capture again on their next call)."""
    for compiled in list(_COMPILED):
        compiled._reset()


# ----- modules -------------------------------------------------------------------------------------------------
class OptimizedModule(Module):
    """What ``engine.compile(module)`` returns: runs ``_orig_mod`` through its compiled forward.

    Attributes not found here come from ``_orig_mod``; ``state_dict()`` keys start with ``_orig_mod.``
    as PyTorch's do.
    """

    _compiled_fn: CompiledFunction

    def __init__(self, mod: Module, compiled: CompiledFunction):
        super().__init__()
        self._orig_mod = mod
        self.__dict__["_compiled_fn"] = compiled
        self.__dict__["dynamo_ctx"] = compiled

    @property
    def training(self) -> bool:
        mod = self.__dict__.get("_modules", {}).get("_orig_mod")
        return True if mod is None else mod.training

    @training.setter
    def training(self, value: bool) -> None:
        mod = self.__dict__.get("_modules", {}).get("_orig_mod")
        if mod is not None:
            mod.training = value

    def forward(self, *args, **kwargs):
        return self._compiled_fn(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "_orig_mod":
                raise
            return getattr(self._orig_mod, name)

    def _get_name(self) -> str:
        return "OptimizedModule"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(dir(self._orig_mod)))


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend="inductor", mode=None, options=None,
            disable: bool = False):
    """Compile a module or function: capture its ops into a graph and replay it while the guards hold.

    Args:
        model: an ``nn.Module`` (returns an ``OptimizedModule``) or a function; omitted, a decorator.
        fullgraph: raise ``engine._dynamo.exc.Unsupported`` at a graph break instead of running eagerly.
        dynamic: True keeps sizes symbolic (one graph for all batch sizes); None/False recompile per shape.
        backend: ``"inductor"`` (fused kernels), ``"eager"``, ``"aot_eager"`` or a callable
            ``backend(gm, example_inputs) -> callable``.
        mode: ``"default"``, ``"reduce-overhead"``, ``"max-autotune"`` (passed to the inductor backend).
        options: backend options (a dict), not together with ``mode``.
        disable: return ``model`` unchanged.

    Example:
        >>> model = engine.compile(nn.Linear(4, 2))
        >>> model(engine.randn(3, 4)).shape
        engine.Size([3, 2])
    """
    if mode not in MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: {', '.join(m for m in MODES if m)}")
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    from engine._dynamo.backends import lookup_backend

    lookup_backend(backend)  # an unknown name fails here, before any call
    settings = {"fullgraph": fullgraph, "dynamic": dynamic, "backend": backend, "mode": mode, "options": options}
    if model is None:
        def decorator(fn):
            return compile(fn, disable=disable, **settings)

        return decorator
    if disable:
        return model
    if isinstance(model, Module):
        return OptimizedModule(model, CompiledFunction(model, root=model, **settings))
    if not callable(model):
        raise RuntimeError(f"engine.compile expects a callable or an nn.Module, got {type(model).__name__}")
    root = model.__self__ if inspect.ismethod(model) and isinstance(model.__self__, Module) else None
    compiled = CompiledFunction(model, root=root, **settings)
    functools.update_wrapper(compiled, model, updated=())
    return compiled
