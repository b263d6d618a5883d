"""One call of a compiled function, captured into a graph with what its guards need.

The capture is ``engine.fx``'s tracer (one op registry, one graph IR) run on the real call, with
what a whole training step adds: tensors the function reads from outside (a global model's
parameters) become live ``get_attr`` references, ``loss.backward()``, ``optimizer.step()``,
``zero_grad()`` and ``scheduler.step()`` become opaque impure nodes that call the real thing at
replay, and a parameter's ``.grad`` read after a backward is a node that reads the live gradient.
What the tracer cannot record (a Python value read from a tensor, ``autograd.grad``, a tensor hook)
is a graph break: the call's result is right (it ran for real) and the frame then runs eagerly.

With ``joint`` (the aot_eager and inductor backends), ops are recorded as the autograd Functions
they are made of, so that backward passes can be traced into graph ops too (``joint.py``).
"""

from __future__ import annotations

import inspect
import operator
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

from engine._dynamo.graph_ops import (
    array_of,
    backward_with_ctx,
    call_method,
    current_modes,
    deliver_grads,
    dropout_mask,
    forward_with_ctx,
    is_opaque,
    read_grad,
    run_backward,
    set_grad,
    set_modes,
    update_running_stats,
)
from engine.autograd.grad_mode import state as grad_state
from engine.fx import _state
from engine.fx.graph import Graph, Node
from engine.fx.tracer import SymInt, Tracer, TracerWarning
from engine.tensor import Tensor

STATE = _state.STATE
_TRACER_FILE = sys.modules[Tracer.__module__].__file__


@dataclass
class GraphCompileReason:
    """Why a graph ended (as ``torch._dynamo.output_graph.GraphCompileReason``)."""

    reason: str
    user_stack: list = field(default_factory=list)
    graph_break: bool = True
    position: int = 0  # index in the captured node list where the break happened


# ----- the tracer -----------------------------------------------------------------------------------
class DynamoTracer(Tracer):
    """``engine.fx``'s tracer plus live outside tensors, gradient reads and graph-break bookkeeping."""

    def __init__(self, params: dict[int, str], dynamic: bool):
        super().__init__(params)
        self.externals: dict[str, Tensor] = {}
        self.breaks: list[GraphCompileReason] = []
        self.modules: dict[int, object] = {}
        self.objects: list = []  # Python objects opaque nodes call (kept alive, guarded by identity)
        self.leaf_candidates: list[Tensor] = []
        self.dynamic = dynamic
        self.specialized = False  # a symbolic size was read as a plain Python value
        self.backward_calls = 0
        self.joint = False  # trace backward passes into graph ops (aot_eager / inductor)
        self.region = 0  # > 0 while a backward pass is being traced
        self.regions = 0
        self.unsafe: list[str] = []  # why a traced backward cannot be replayed (then it stays opaque)
        self.by_data: dict[int, Node] = {}
        self.raw_arrays = 0
        self.snapshot: Snapshot | None = None
        self.ctx_nodes: dict[int, tuple] = {}  # id(autograd node) -> (its ctx node, the node), see forward_with_ctx
        self.ctx_values: dict[Node, object] = {}

    def _bind(self, value, node: Node) -> None:
        super()._bind(value, node)
        if isinstance(value, Tensor):
            self.by_data[id(value._data)] = node
            node.meta.setdefault("requires_grad", value._requires_grad)
            if type(value) is not Tensor and type(value) is not _PARAMETER:
                node.meta["tensor_type"] = type(value)  # a subclass (a quantized tensor) carries more than an array

    def arg(self, a):
        if _is_array(a):
            if not self.region:
                self.raw_arrays += 1  # NOTE: an array argument would be a stale constant at replay
                return a
            node = self.by_data.get(id(a))
            if node is None:
                self.unsafe.append(f"an array computed outside the recorded ops ({a.shape} {a.dtype})")
                return a
            return self.graph.call_function(array_of, (node,))
        return super().arg(a)

    def call_op(self, entry, args, kwargs):
        if not self.joint or self.region or not grad_state.enabled or entry.mutates:
            return super().call_op(entry, args, kwargs)
        decomposition = _decompositions().get(entry.name)
        if decomposition is not None:
            out = decomposition(self, *args, **kwargs)
            if out is not NotImplemented:
                return out
        if entry.impure:  # in place or random: its effect is the op itself, never its pieces
            return super().call_op(entry, args, kwargs)
        return self._record_inside(entry, args, kwargs)

    def call_function(self, cls, args):
        if not (self.joint and not self.region and grad_state.enabled and cls in _ctx_classes()):
            return super().call_function(cls, args)
        out = self._run(cls.apply, args, {})
        ctx = out.grad_fn if isinstance(out, Tensor) else None
        if ctx is None or type(ctx) is not cls:
            self._node(cls.apply, args, {}, out)
            return out
        pair = self.graph.call_function(forward_with_ctx, (cls, tuple(ctx.needs_input_grad), *self.arg(args)))
        pair.meta["ctx_forward"] = True
        node = self.graph.call_function(operator.getitem, (pair, 0))
        self._bind(out, node)
        ctx_node = self.graph.call_function(operator.getitem, (pair, 1))
        self.ctx_nodes[id(ctx)] = (ctx_node, ctx)
        self.ctx_values[ctx_node] = ctx
        return out

    def _node(self, target, args, kwargs, out) -> Node:
        node = super()._node(target, args, kwargs, out)
        node.meta["modes"] = current_modes()
        return node

    def _record_inside(self, entry, args, kwargs):
        """Record the ops an op is made of (their saved tensors are then graph values a traced backward
        can read); an op that is one autograd Function keeps its own node and name."""
        nodes = self.graph._nodes
        start, raw, breaks = len(nodes), self.raw_arrays, len(self.breaks)
        self.op_stack.append(entry.name)
        try:
            out = entry.fn(*args, **kwargs)
        finally:
            self.op_stack.pop()
        inner = nodes[start:]
        outs = _flat(out)
        made_outside = any(isinstance(t, Tensor) and id(t) not in self.env for t in outs)
        calls = [n for n in inner if n.op == "call_function"]
        single = (len(calls) == 1 and len(outs) == 1 and isinstance(out, Tensor) and not made_outside
                  and self.env.get(id(out)) is calls[0] and getattr(calls[0].target, "__self__", None) is not None
                  and isinstance(calls[0].target.__self__, type))
        inner_break = len(self.breaks) != breaks  # the op reads its own data in Python: keep it whole
        if made_outside or single or self.raw_arrays != raw or not calls or inner_break:
            self._undo(inner)
            self.raw_arrays = raw
            del self.breaks[breaks:]
            node = self._node(entry.call, args, kwargs, out)
            if entry.mutates or (out is not None and args and out is args[0] and isinstance(out, Tensor)):
                self._bind(args[0], node)
        return out

    def _undo(self, inner: list) -> None:
        gone = set()
        for node in reversed(inner):
            if node.op == "call_function" and not node.users:
                self.graph.erase_node(node)
                gone.add(node)
        if gone:
            for table in (self.env, self.by_data):
                for k in [k for k, n in table.items() if n in gone]:
                    del table[k]

    def placeholder(self, name: str, value) -> Node:
        node = super().placeholder(name, value)
        if isinstance(value, Tensor) and value._requires_grad:
            self.leaf_candidates.append(value)
        return node

    def _attr(self, t: Tensor) -> Node:
        name = self.params.get(id(t))
        if name is None and self.region:
            node = self.by_data.get(id(t._data))
            if node is None:
                self.unsafe.append(f"a tensor made outside the recorded ops in backward ({list(t._data.shape)})")
            else:
                self.env[id(t)] = node
                self.keep.append(t)
                return node
        if name is None:
            owner = self._grad_owner(t)
            if owner is not None:
                node = self.graph.call_function(read_grad, (self.arg(owner),))
                self._bind(t, node)
                return node
            name = f"_ext{len(self.externals)}"
            self.params[id(t)] = name
        self.externals.setdefault(name, t)
        node = self.graph.get_attr(name)
        self._bind(t, node)
        if t._requires_grad:
            self.leaf_candidates.append(t)
        return node

    def _grad_owner(self, t: Tensor):
        for leaf in self.leaf_candidates:
            if leaf.grad is t:
                return leaf
        return None

    def graph_break(self, reason: str) -> None:
        stack = [f for f in traceback.extract_stack()[:-2]
                 if not f.filename.startswith(_ENGINE_DIR) and f.filename != warnings.__file__]
        self.breaks.append(GraphCompileReason(reason, stack[-8:], True, len(self.graph._nodes)))

    def opaque_call(self, target, args: tuple, run):
        """Run ``run()`` with recording paused and add an impure node ``target(*args)``."""
        self._pause()
        try:
            out = run()
        finally:
            self._resume()
        node = self.graph.call_function(target, self.arg(args))
        node.meta["opaque"] = True
        return out, node


_ENGINE_DIR = __file__.rsplit("/", 2)[0] + "/"


def _parameter_type():
    from engine.nn.parameter import Parameter

    return Parameter


_PARAMETER = _parameter_type()


def _decompositions() -> dict:
    from engine._dynamo.decompositions import DECOMPOSITIONS

    return DECOMPOSITIONS


def _active() -> DynamoTracer | None:
    tracer = STATE.tracer
    return tracer if isinstance(tracer, DynamoTracer) else None


def _ctx_classes() -> frozenset:
    global _CTX_CLASSES
    if _CTX_CLASSES is None:
        from engine.ops import conv, normalization, pooling

        _CTX_CLASSES = frozenset({conv.Conv2d, conv.ConvTranspose2d, pooling.MaxPool2d, pooling.AvgPool2d,
                                  normalization.Standardize})
    return _CTX_CLASSES


_CTX_CLASSES: frozenset | None = None


def _ctx_backward(tracer: DynamoTracer, cls, original):
    """``cls.backward`` while a backward pass is traced: one ``backward_with_ctx`` node."""

    def backward(ctx, *grads):
        found = tracer.ctx_nodes.get(id(ctx)) if STATE.tracer is tracer and tracer.region else None
        if found is None:
            return original(ctx, *grads)
        ctx_node = found[0]
        g = grads[0]
        results = tracer._run(backward_with_ctx, (cls, ctx, g), {})
        node = tracer.graph.call_function(backward_with_ctx, (cls, ctx_node, tracer.arg(g)))
        for i, r in enumerate(results):
            if isinstance(r, Tensor):
                tracer._bind(r, tracer.graph.call_function(operator.getitem, (node, i)))
        return results

    return staticmethod(backward)


# ----- patches active only while a DynamoTracer records -----------------------------------------
class _Patches:
    """Swap a few engine entry points for recording versions during one capture."""

    def __init__(self):
        self._saved: list = []

    def set(self, owner, name: str, value) -> None:
        self._saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def restore(self) -> None:
        for owner, name, old in reversed(self._saved):
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)
        self._saved.clear()


_MISSING = object()


def _install_patches(tracer: DynamoTracer) -> _Patches:
    import engine.autograd as autograd_pkg
    from engine.autograd import graph as autograd_graph
    from engine.nn.modules.module import Module
    from engine.optim.lr_scheduler.base import LRScheduler
    from engine.optim.optimizer import Optimizer

    patches = _Patches()
    real_backward, real_grad = autograd_graph.backward, autograd_graph.grad
    real_call = Module.__call__

    def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
        if STATE.tracer is not tracer:
            return real_backward(tensors, grad_tensors, retain_graph, create_graph, inputs)
        tracer.backward_calls += 1
        if create_graph:
            tracer.graph_break("backward(create_graph=True)")
        elif tracer.joint:
            return _joint_backward(tracer, real_backward, real_grad, tensors, grad_tensors, retain_graph, inputs)
        return tracer.opaque_call(run_backward, (tensors, grad_tensors, retain_graph, create_graph, inputs),
                                  lambda: real_backward(tensors, grad_tensors, retain_graph, create_graph,
                                                        inputs))[0]

    def grad(*args, **kwargs):
        if STATE.tracer is tracer and not tracer.region:
            tracer.graph_break("engine.autograd.grad")
            return tracer._run(real_grad, args, kwargs)
        return real_grad(*args, **kwargs)

    def module_call(self, *args, **kwargs):
        if STATE.tracer is tracer and id(self) not in tracer.modules:
            tracer.modules[id(self)] = self
            if tracer.snapshot is not None:
                tracer.snapshot.keep_module(self)
        return real_call(self, *args, **kwargs)

    patches.set(autograd_graph, "backward", backward)
    patches.set(autograd_pkg, "backward", backward)
    patches.set(autograd_graph, "grad", grad)
    patches.set(autograd_pkg, "grad", grad)
    patches.set(Module, "__call__", module_call)
    for cls in _subclasses(Optimizer):
        for name in ("step", "zero_grad"):
            if name in cls.__dict__:
                patches.set(cls, name, _opaque_method(tracer, cls.__dict__[name], name))
    for cls in _subclasses(LRScheduler):
        if "step" in cls.__dict__:
            patches.set(cls, "step", _opaque_method(tracer, cls.__dict__["step"], "step"))
    _patch_stateful(patches, tracer)
    if tracer.joint:
        for cls in _ctx_classes():
            patches.set(cls, "backward", _ctx_backward(tracer, cls, cls.backward))
    patches.set(Tensor, "grad", _recording_grad_slot(tracer, Tensor.__dict__["grad"]))
    for name in ("register_hook", "retain_grad"):
        patches.set(Tensor, name, _breaking_method(tracer, getattr(Tensor, name), f"Tensor.{name}"))
    if tracer.dynamic:
        for name in ("__index__", "__int__", "__float__", "__bool__", "__eq__", "__ne__", "__lt__", "__le__",
                     "__gt__", "__ge__"):
            patches.set(SymInt, name, _specializing(tracer, getattr(int, name)))
        patches.set(SymInt, "__hash__", int.__hash__)
    return patches


def _autograd_leaves(roots: tuple) -> list:
    from engine.autograd.graph import _count_dependencies

    targets = [t if t.grad_fn is None else t.grad_fn for t in roots]
    deps = _count_dependencies(targets)
    leaves = [t for t in targets if isinstance(t, Tensor)]
    return list(dict.fromkeys([*leaves, *(k for k in deps if isinstance(k, Tensor))]))


def trace_grads(tracer: DynamoTracer, real_grad, outputs: tuple, leaves: list, grad_outputs):
    """Record ``grad(outputs, leaves)`` as graph ops (create_graph runs each backward formula as tensor ops).

    Returns the gradients and their nodes (None where a leaf got no gradient).
    """
    tracer.region += 1
    try:
        grads = real_grad(outputs, leaves, grad_outputs, retain_graph=True, create_graph=True, allow_unused=True)
        nodes = [None if g is None else tracer.arg(g) for g in grads]
    except Exception as exc:  # an op without a differentiable backward formula: autograd stays opaque
        tracer.unsafe.append(f"{type(exc).__name__}: {exc}")
        return None, None
    finally:
        tracer.region -= 1
    return grads, nodes


def _mark_region(tracer: DynamoTracer, start: int, region: int) -> None:
    for node in tracer.graph._nodes[start:]:
        if node.op == "call_function":
            node.meta["joint"] = region


def _joint_backward(tracer: DynamoTracer, real_backward, real_grad, tensors, grad_tensors, retain_graph, inputs):
    """``loss.backward()`` in a captured training step: traced into ops, with the opaque form kept beside it."""
    roots = (tensors,) if isinstance(tensors, Tensor) else tuple(tensors)
    if grad_tensors is not None:
        grad_tensors = (grad_tensors,) if isinstance(grad_tensors, Tensor) else tuple(grad_tensors)
    if inputs is not None:
        leaves = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    else:
        leaves = [t for t in _autograd_leaves(roots) if t._requires_grad]
    if any(t._hooks for t in leaves):
        tracer.unsafe.append("a leaf has a gradient hook")
    if not leaves or tracer.unsafe:
        return tracer.opaque_call(run_backward, (tensors, grad_tensors, retain_graph, False, inputs),
                                  lambda: real_backward(tensors, grad_tensors, retain_graph, False, inputs))[0]
    tracer.regions += 1
    region = tracer.regions
    start = len(tracer.graph._nodes)
    grads, _ = trace_grads(tracer, real_grad, roots, leaves, grad_tensors)
    if grads is not None:
        grads = tuple(None if g is None else g.detach() for g in grads)
        tracer.opaque_call(deliver_grads, (tuple(leaves), grads), lambda: deliver_grads(tuple(leaves), grads))
        _mark_region(tracer, start, region)
        # the opaque form, used instead when some traced backward cannot be replayed
        tracer.graph.call_function(run_backward, tracer.arg((tensors, grad_tensors, retain_graph, False, inputs))) \
            .meta["opaque_backward"] = region
        return None
    _mark_region(tracer, start, region)
    _, node = tracer.opaque_call(run_backward, (tensors, grad_tensors, retain_graph, False, inputs),
                                 lambda: real_backward(tensors, grad_tensors, retain_graph, False, inputs))
    node.meta["opaque_backward"] = region
    return None


def _flat(value) -> list:
    if isinstance(value, tuple | list):
        return [t for v in value for t in _flat(v)]
    return [value]


def _is_array(a) -> bool:
    import numpy as np

    return isinstance(a, np.ndarray) or hasattr(a, "__cuda_array_interface__")


def _patch_stateful(patches: _Patches, tracer: DynamoTracer) -> None:
    """Functions that change tensors' arrays in place outside the op registry become opaque nodes."""
    import engine.nn.utils as nn_utils
    from engine.amp.grad_scaler import GradScaler
    from engine.nn.modules.module import Module
    from engine.nn.utils import clip_grad, convert_parameters

    for module in (nn_utils, clip_grad, convert_parameters):
        for name in ("clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "vector_to_parameters"):
            fn = module.__dict__.get(name)
            if fn is not None:
                patches.set(module, name, _opaque_function(tracer, fn))
    patches.set(Module, "zero_grad", _opaque_method(tracer, Module.zero_grad, "zero_grad"))
    for name in ("step", "update", "unscale_"):
        patches.set(GradScaler, name, _opaque_method(tracer, GradScaler.__dict__[name], name, allow_objects=True))


def _opaque_function(tracer: DynamoTracer, fn):
    def recorded(*args, **kwargs):
        if STATE.tracer is not tracer or _in_opaque[0]:
            return fn(*args, **kwargs)
        args = tuple(a if isinstance(a, Tensor | int | float | str | bool | type(None) | tuple | list | dict)
                     else list(a) if hasattr(a, "__iter__") else a for a in args)
        _in_opaque[0] = True
        try:
            out, node = tracer.opaque_call(fn, (*args, *kwargs.values()), lambda: fn(*args, **kwargs))
        finally:
            _in_opaque[0] = False
        if kwargs:
            node._set_args(tracer.arg(args), tracer.arg(kwargs))
        tracer._bind(out, node)
        return out

    recorded.__wrapped__ = fn  # type: ignore[attr-defined]
    return recorded


def _subclasses(cls) -> list:
    out, stack = [], [cls]
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(c.__subclasses__())
    return out


def _opaque_method(tracer: DynamoTracer, method, name: str, allow_objects: bool = False):
    def recorded(self, *args, **kwargs):
        if STATE.tracer is not tracer or _in_opaque[0]:
            return method(self, *args, **kwargs)
        if any((callable(a) and not allow_objects) or _has_tensor(a) for a in (*args, *kwargs.values())):
            tracer.graph_break(f"{type(self).__name__}.{name} with a closure or tensor arguments")
            return tracer._run(method, (self, *args), kwargs)
        tracer.objects.append(self)
        _in_opaque[0] = True
        try:
            return tracer.opaque_call(call_method, (self, name, args, kwargs),
                                      lambda: method(self, *args, **kwargs))[0]
        finally:
            _in_opaque[0] = False

    recorded.__wrapped__ = method  # type: ignore[attr-defined]
    recorded._kiln_step = getattr(method, "_kiln_step", False)  # type: ignore[attr-defined]
    return recorded


_in_opaque = [False]


def _recording_grad_slot(tracer: DynamoTracer, slot):
    """``Tensor.grad`` (a slot) whose assignment in the captured code is a ``set_grad`` node."""

    def assign(self, value) -> None:
        try:
            slot.__get__(self)
        except AttributeError:  # a tensor being made (engine.tensor._make): nothing the graph must redo
            slot.__set__(self, value)
            return
        slot.__set__(self, value)
        if STATE.tracer is tracer and not _in_opaque[0] and not tracer.region:
            if value is not None and not isinstance(value, Tensor):
                tracer.graph_break("Tensor.grad assigned a non-tensor")
                return
            tracer.graph.call_function(set_grad, tracer.arg((self, value))).meta["opaque"] = True

    return property(slot.__get__, assign, slot.__delete__, "The gradient accumulated by backward (or None).")


def _breaking_method(tracer: DynamoTracer, method, what: str):
    def breaking(self, *args, **kwargs):
        if STATE.tracer is tracer:
            tracer.graph_break(what)
            return tracer._run(method, (self, *args), kwargs)
        return method(self, *args, **kwargs)

    return breaking


def _specializing(tracer: DynamoTracer, method):
    def specialized(self, *args):
        if STATE.tracer is tracer and sys._getframe(1).f_code.co_filename != _TRACER_FILE:
            tracer.specialized = True
        return method(self, *args)

    return specialized


def _has_tensor(value) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, tuple | list):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    return False


# ----- inputs and outputs ------------------------------------------------------------------------------
def flatten_tensors(value, out: list) -> None:
    """The tensors inside nested tuples/lists/dicts, in order."""
    if isinstance(value, Tensor):
        out.append(value)
    elif isinstance(value, tuple | list):
        for v in value:
            flatten_tensors(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            flatten_tensors(v, out)


def _output_template(tracer: DynamoTracer, value):
    """The output with tensors replaced by nodes, keeping tuple/namedtuple/list/dict types."""
    if isinstance(value, Tensor):
        return tracer.arg(value)
    if isinstance(value, tuple):
        items = [_output_template(tracer, v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_output_template(tracer, v) for v in value]
    if isinstance(value, dict):
        return type(value)((k, _output_template(tracer, v)) for k, v in value.items()) \
            if type(value) is dict else _dict_like(value, tracer)
    if _has_tensor_attrs(value):
        tracer.graph_break(f"an output of type {type(value).__name__} holding tensors")
    return value


def _dict_like(value, tracer):
    try:
        return type(value)({k: _output_template(tracer, v) for k, v in value.items()})
    except TypeError:
        tracer.graph_break(f"an output of type {type(value).__name__}")
        return value


def _has_tensor_attrs(value) -> bool:
    return hasattr(value, "__dict__") and any(isinstance(v, Tensor) for v in vars(value).values())


def rebuild(template, values: dict):
    """The output structure with each node replaced by its value."""
    if isinstance(template, Node):
        return values[template]
    if isinstance(template, tuple):
        items = [rebuild(v, values) for v in template]
        return type(template)(*items) if hasattr(template, "_fields") else tuple(items)
    if isinstance(template, list):
        return [rebuild(v, values) for v in template]
    if isinstance(template, dict):
        return type(template)((k, rebuild(v, values)) for k, v in template.items())
    return template


def _template_nodes(template, out: list) -> None:
    if isinstance(template, Node):
        if template not in out:
            out.append(template)
    elif isinstance(template, tuple | list):
        for v in template:
            _template_nodes(v, out)
    elif isinstance(template, dict):
        for v in template.values():
            _template_nodes(v, out)


# ----- undoing the captured call's side effects ------------------------------------------------------------
class Snapshot:
    """RNG states and copies of the buffers and inputs a call may change, taken before it runs.

    After the capture, restoring it lets the first call's result come from the compiled program too,
    so that every call of a compiled function computes the same way (a resumed run matches bit for bit).
    """

    def __init__(self, enabled: bool = True):
        from engine import random

        self.enabled = enabled
        self.rng = [(random.default_generator, random.default_generator.get_state())]
        self.rng += [(g, g.get_state()) for g in random._cuda_generators.values()]
        self.arrays: dict[int, tuple] = {}

    def keep(self, t: Tensor) -> None:
        if self.enabled and id(t) not in self.arrays:
            self.arrays[id(t)] = (t, t._data.copy())

    def keep_module(self, module) -> None:
        for m in module.modules():
            for b in m._buffers.values():
                if b is not None:
                    self.keep(b)

    def covers(self, graph: Graph, state: dict) -> bool:
        """Whether restoring undoes every change the graph makes (else the capture's result is kept)."""
        from engine.fx import registry
        from engine.random import Generator

        for node in graph.nodes:
            if node.op != "call_function":
                continue
            if node.target is update_running_stats:
                if any(isinstance(a, Node) and (a.op != "get_attr" or id(state.get(a.target)) not in self.arrays)
                       for a in node.args[1:3]):
                    return False
                continue
            if (is_opaque(node) and node.target not in (dropout_mask, set_modes)) or node.meta.get("opaque"):
                return False
            if any(isinstance(a, Generator) for a in (*node.args, *node.kwargs.values())):
                return False
            entry = registry.of(node.target)
            if entry is None or not node.args or not isinstance(node.args[0], Node):
                continue
            short = entry.name.rsplit(".", 1)[-1]
            if entry.mutates or (short.endswith("_") and not short.endswith("__")) or short.startswith("__i"):
                target = node.args[0]
                while target.op == "call_function" and target.args and isinstance(target.args[0], Node):
                    target = target.args[0]  # a view's base
                if target.op == "get_attr" and id(state.get(target.target)) not in self.arrays:
                    return False
        return True

    def restore(self) -> None:
        for gen, st in self.rng:
            gen.set_state(st)
        for t, data in self.arrays.values():
            t._data[...] = data

    def release(self) -> None:
        self.arrays.clear()


# ----- the capture -------------------------------------------------------------------------------------
@dataclass
class Captured:
    """A captured call: its graph (outputs a flat tuple), live state, output structure and guards' facts."""

    graph: Graph
    state: dict  # qualified name -> live tensor (parameters, buffers, outside tensors)
    template: object  # the output structure, nodes in place of tensors
    outputs: list  # the nodes of the graph's output tuple, in order
    result: object  # what the captured call returned (it ran for real)
    breaks: list
    modules: list
    objects: list
    needs_autograd: bool
    specialized: bool
    input_names: list = field(default_factory=list)
    mode: str = "plain"  # "plain" (ops replay with autograd), "joint" (backward traced in) or "aot"
    aot: Any = None  # for "aot": the forward and backward graphs (engine._dynamo.joint.AOTGraphs)
    joint_unsafe: list = field(default_factory=list)
    snapshot: Any = None  # set when the compiled program can redo the captured call from its starting state
    switches_modes: bool = False  # the graph sets grad mode / autocast (set_modes nodes)


def capture_call(fn, args: tuple, kwargs: dict, *, root=None, dynamic: bool = False,
                 joint: bool = False, redo: bool = False) -> Captured:
    """Run ``fn(*args, **kwargs)`` once under the tracer; ``root`` is the module whose state it reads.

    With ``joint``, backward passes (``loss.backward()`` inside ``fn``, or the backward of ``fn``'s
    outputs) are traced into graph ops too, so that the graph replays without autograd. With ``redo``, the
    buffers, inputs and RNG states the call may change are saved first (``Captured.snapshot``).
    """
    from engine._dynamo import joint as joint_graphs
    from engine.autograd import graph as autograd_graph
    from engine.autograd.grad_mode import state as grad_state
    from engine.fx.graph_module import module_state

    state = {name: t for name, t, _ in module_state(root)} if root is not None else {}
    tracer = DynamoTracer({id(t): name for name, t in reversed(list(state.items()))}, dynamic)
    tracer.joint = joint and grad_state.enabled
    real_grad = autograd_graph.grad
    entry_modes = current_modes()
    if root is not None:
        tracer.modules[id(root)] = root
        for t in state.values():
            if t._requires_grad:
                tracer.leaf_candidates.append(t)
    leaves: list = []
    flatten_tensors((args, kwargs), leaves)
    names = _leaf_names(fn, args, kwargs)
    snapshot = Snapshot(enabled=redo)
    if root is not None:
        snapshot.keep_module(root)
    for t in leaves:
        if not t._requires_grad:
            snapshot.keep(t)
    tracer.snapshot = snapshot
    patches = _install_patches(tracer)
    real_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, TracerWarning) and STATE.tracer is tracer:
            tracer.graph_break(_short_reason(str(message)))
            return
        real_show(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", TracerWarning)
            warnings.showwarning = show
            with tracer:
                for name, value in zip(names, leaves, strict=True):
                    tracer.placeholder(name, value)
                result = fn(*args, **kwargs)
                template = _output_template(tracer, result)
                outputs: list = []
                _template_nodes(template, outputs)
                aot = None
                if tracer.joint and not tracer.backward_calls and not tracer.breaks and not tracer.unsafe:
                    aot = joint_graphs.trace_aot(tracer, real_grad, result, outputs)
    finally:
        patches.restore()
    _mark_segments(tracer)
    tracer.graph.output(tuple(outputs))
    mode = joint_graphs.settle(tracer, aot)
    switches = _replay_mode_switches(tracer.graph, entry_modes, grad=mode == "plain")
    _eliminate_dead_code(tracer.graph)
    used = {n.target for n in tracer.graph.nodes if n.op == "get_attr"}
    if aot is not None and mode == "aot":
        used |= {n.target for n in aot.backward.nodes if n.op == "get_attr"}
    live = {k: v for k, v in {**state, **tracer.externals}.items() if k in used}
    needs_autograd = mode == "plain" and grad_state.enabled and (
        any(t._requires_grad for t in leaves) or any(t._requires_grad for t in live.values()))
    if mode != "plain" and dynamic:
        tracer.specialized = True  # NOTE: backward formulas read concrete sizes
    redo = redo and (mode == "aot" or (mode == "plain" and not needs_autograd and not tracer.backward_calls))
    kept = snapshot if redo and not tracer.breaks and snapshot.covers(tracer.graph, live) else None
    return Captured(tracer.graph, live, template, outputs, result, tracer.breaks, list(tracer.modules.values()),
                    tracer.objects, needs_autograd, tracer.specialized, names, mode,
                    aot if mode == "aot" else None, list(tracer.unsafe), kept, switches)


def _replay_mode_switches(graph: Graph, entry: tuple, grad: bool) -> bool:
    """Insert ``set_modes`` nodes where the captured code entered or left ``no_grad`` or ``autocast``."""
    current = entry
    nodes = graph._nodes
    i = 0
    changed = False
    while i < len(nodes):
        node = nodes[i]
        modes = node.meta.get("modes")
        if node.op == "output":
            modes = entry
        if modes is not None and (modes[1] != current[1] or (grad and modes[0] != current[0])):
            switch = Node(graph, graph._unique("set_modes"), "call_function", set_modes,
                          (modes[0] if grad else None, modes[1]))
            nodes.insert(i, switch)
            i += 1
            current = (modes[0] if grad else current[0], modes[1])
            changed = True
        i += 1
    return changed


def _mark_segments(tracer: DynamoTracer) -> None:
    """Number each node by how many graph breaks came before it (``explain`` splits there)."""
    cuts = [b.position for b in tracer.breaks]
    segment = 0
    for i, node in enumerate(tracer.graph._nodes):
        while segment < len(cuts) and cuts[segment] <= i:
            segment += 1
        node.meta["segment"] = segment


def _short_reason(message: str) -> str:
    head = message.split(" might cause", 1)[0]
    return f"Tensor data read in Python: {head}" if head.startswith("Converting") else message


def _leaf_names(fn, args: tuple, kwargs: dict) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    names: list[str] = []

    def walk(value, path: str) -> None:
        if isinstance(value, Tensor):
            names.append(f"L_{path}_")
        elif isinstance(value, tuple | list):
            for i, v in enumerate(value):
                walk(v, f"{path}_{i}")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}_{k}")

    for i, a in enumerate(args):
        walk(a, params[i] if i < len(params) and params[i] not in ("args", "kwargs") else f"args_{i}")
    for k, v in kwargs.items():
        walk(v, k)
    return names


def _eliminate_dead_code(graph: Graph) -> None:
    from engine.fx.passes import is_impure

    for node in reversed(graph.nodes):
        if not node.users and not is_impure(node) and not (is_opaque(node) and node.target is not read_grad) \
                and not node.meta.get("opaque") and node.target is not operator.setitem:
            graph.erase_node(node)
