"""Graph capture: run a function once on real tensors and record every op it calls.

Ops record at their public entry (see ``engine.fx.registry``); an autograd ``Function`` reached
outside any registered op records at ``Function.apply``. Sizes read from traced tensors are
``SymInt``s (ints that remember the node they came from), so ``x.view(x.size(0), -1)`` keeps the
batch dimension symbolic. Python control flow on tensor values cannot be recorded: converting a
traced tensor to a Python value warns with ``TracerWarning``, as in PyTorch.
"""

from __future__ import annotations

import inspect
import operator
import warnings

from engine.autograd import function as _function
from engine.fx import _state
from engine.fx.graph import Graph, Node
from engine.tensor import Size, Tensor

STATE = _state.STATE


class TracerWarning(Warning):
    """Something the trace cannot record (Python values computed from tensors): it is a constant."""


class SymInt(int):
    """An int read from a traced tensor's shape: arithmetic on it is recorded in the graph."""

    node: Node

    def __new__(cls, value: int, node: Node):
        self = int.__new__(cls, value)
        self.node = node
        return self


def _sym_binary(fn, reflected: bool):
    def method(self, other):
        if not isinstance(other, int) or isinstance(other, bool):
            return fn(other, int(self)) if reflected else fn(int(self), other)
        a, b = (other, self) if reflected else (self, other)
        value = fn(int(a), int(b))
        tracer = STATE.tracer
        if tracer is None or type(value) is not int:
            return value
        return tracer.sym_op(fn, (a, b), value)

    return method


for _name, _fn in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("floordiv", operator.floordiv), ("mod", operator.mod)):
    setattr(SymInt, f"__{_name}__", _sym_binary(_fn, False))
    setattr(SymInt, f"__r{_name}__", _sym_binary(_fn, True))


def _sym_neg(self):
    tracer = STATE.tracer
    return -int(self) if tracer is None else tracer.sym_op(operator.neg, (self,), -int(self))


SymInt.__neg__ = _sym_neg  # type: ignore[method-assign]


class Tracer:
    """Records ops into a ``Graph`` while a function runs on real tensors."""

    def __init__(self, params: dict[int, str] | None = None, decompose=None):
        self.graph = Graph()
        self.env: dict[int, Node] = {}  # id(tensor) -> the node whose value it is
        self.keep: list = []  # tensors named in env stay alive, so their ids stay unique
        self.params = params or {}  # id(parameter or buffer) -> qualified name
        self.constants: dict[str, Tensor] = {}
        self.module_stack: list[tuple[str, str]] = [("", "")]
        self.decompose = decompose  # entry -> bool: record the ops inside this op instead of the op
        self.op_stack: list[str] = []
        self._hook = self.call_function

    # ----- activation -------------------------------------------------------------------------
    def __enter__(self):
        if STATE.tracer is not None:
            raise RuntimeError("graph capture is already running (nested engine.jit.trace / engine.export)")
        self._resume()
        return self

    def __exit__(self, *exc):
        self._pause()

    def _pause(self) -> None:
        STATE.tracer = None
        _function._capture = None

    def _resume(self) -> None:
        STATE.tracer = self
        _function._capture = self._hook

    def _run(self, fn, args, kwargs):
        self._pause()
        try:
            return fn(*args, **kwargs)
        finally:
            self._resume()

    # ----- recording --------------------------------------------------------------------------
    def placeholder(self, name: str, value) -> Node:
        node = self.graph.placeholder(name)
        self._bind(value, node)
        return node

    def call_op(self, entry, args, kwargs):
        if self.decompose is not None and self.decompose(entry):
            return self._decomposed(entry, args, kwargs)
        out = self._run(entry.fn, args, kwargs)
        node = self._node(entry.call, args, kwargs, out)
        if entry.mutates or (out is not None and args and out is args[0] and isinstance(out, Tensor)):
            self._bind(args[0], node)
        return out

    def _decomposed(self, entry, args, kwargs):
        self.op_stack.append(entry.name)
        try:
            out = entry.fn(*args, **kwargs)
        finally:
            self.op_stack.pop()
        if any(isinstance(t, Tensor) and id(t) not in self.env for t in _tensors(out)):
            self._node(entry.call, args, kwargs, out)  # some output was made outside any op: keep the op whole
        return out

    def call_function(self, cls, args):
        """``Function.apply`` under capture (an op no registered entry covered)."""
        out = self._run(cls.apply, args, {})
        self._node(cls.apply, args, {}, out)
        return out

    def _node(self, target, args, kwargs, out) -> Node:
        node = self.graph.call_function(target, self.arg(args), self.arg(kwargs))
        path, kind = self.module_stack[-1]
        node.meta["module_path"], node.meta["module_type"] = path, kind
        if self.op_stack:
            node.meta["inside"] = self.op_stack[-1]
        self._bind(out, node)
        return node

    def sym_op(self, fn, operands, value):
        if not any(isinstance(o, SymInt) and o.node.graph is self.graph for o in operands):
            return value
        node = self.graph.call_function(fn, self.arg(operands))
        node.meta["value"] = value
        return SymInt(value, node)

    def size(self, t: Tensor, dim=None):
        node = self.env.get(id(t))
        shape = t._data.shape
        if node is None or node.op == "get_attr":  # parameters and constants have static shapes
            return Size(shape) if dim is None else shape[dim]
        if dim is not None:
            return self._sym_size(node, dim % len(shape), shape)
        return Size(self._sym_size(node, i, shape) for i in range(len(shape)))

    def _sym_size(self, node: Node, dim: int, shape: tuple) -> SymInt:
        size = self.graph.call_function(Tensor._size_method, (node, dim))
        size.meta["value"] = shape[dim]
        return SymInt(shape[dim], size)

    def _bind(self, value, node: Node) -> None:
        if isinstance(value, Tensor):
            self.env[id(value)] = node
            self.keep.append(value)
            node.meta.setdefault("shape", tuple(value._data.shape))
            node.meta.setdefault("dtype", value._dtype)
        elif isinstance(value, tuple | list):
            for i, item in enumerate(value):
                if _has_tensor(item):
                    self._bind(item, self.graph.call_function(operator.getitem, (node, i)))
        elif isinstance(value, dict):
            for k, item in value.items():
                if _has_tensor(item):
                    self._bind(item, self.graph.call_function(operator.getitem, (node, k)))

    def arg(self, a):
        """An argument as graph data: tensors become nodes (a new constant if never seen)."""
        if isinstance(a, Tensor):
            node = self.env.get(id(a))
            if node is None:
                node = self._attr(a)
            return node
        if isinstance(a, SymInt):
            return a.node if a.node.graph is self.graph else int(a)
        if isinstance(a, tuple):
            return tuple(self.arg(v) for v in a)
        if isinstance(a, list):
            return [self.arg(v) for v in a]
        if isinstance(a, dict):
            return {k: self.arg(v) for k, v in a.items()}
        if isinstance(a, slice):
            return slice(self.arg(a.start), self.arg(a.stop), self.arg(a.step))
        return a

    def _attr(self, t: Tensor) -> Node:
        name = self.params.get(id(t))
        if name is None:
            name = f"_tensor_constant{len(self.constants)}"
            self.constants[name] = self._run(_copy, (t,), {})  # not recorded: detach/clone are ops too
        node = self.graph.get_attr(name)
        self._bind(t, node)
        return node

    def is_traced(self, t: Tensor) -> bool:
        node = self.env.get(id(t))
        return node is not None and node.op != "get_attr"


def _copy(t: Tensor) -> Tensor:
    return t.detach().clone()


def _tensors(value) -> list:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _tensors(v)]
    return []


def _has_tensor(value) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, tuple | list):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    return False


# ----- hooks on Tensor: symbolic sizes and TracerWarnings -------------------------------------
_WARNINGS = {
    "__bool__": "a Python boolean", "item": "a Python number", "__int__": "a Python integer",
    "__float__": "a Python float", "__index__": "a Python index", "tolist": "a Python list",
    "numpy": "a NumPy array",
}


def install_tensor_hooks(tensor_cls) -> None:
    """Make ``size()``/``shape`` symbolic and Python conversions warn while a trace runs."""
    raw_size = tensor_cls.size

    def size(self, dim=None):
        tracer = STATE.tracer
        if tracer is None:
            return raw_size(self, dim)
        return tracer.size(self, dim)

    size.__doc__ = raw_size.__doc__
    from engine.fx import registry

    registry.register("Tensor.size", raw_size, wrap=False)
    tensor_cls._size_method = raw_size
    tensor_cls.size = size
    tensor_cls.shape = property(size, doc="The shape of the tensor (``torch.Size``).")
    for name, what in _WARNINGS.items():
        setattr(tensor_cls, name, _warning(getattr(tensor_cls, name), what))


def _warning(method, what: str):
    def converted(self, *args, **kwargs):
        tracer = STATE.tracer
        if tracer is not None and tracer.is_traced(self):
            path, kind = tracer.module_stack[-1]
            where = f" (in module '{path}' ({kind}))" if kind else ""
            warnings.warn(f"Converting a tensor to {what} might cause the trace to be incorrect{where}. We can't "
                          "record the data flow of Python values, so this value will be treated as a constant in "
                          "the future. This means that the trace might not generalize to other inputs!",
                          TracerWarning, stacklevel=2)
            return tracer._run(method, (self, *args), kwargs)
        return method(self, *args, **kwargs)

    converted.__name__ = method.__name__
    converted.__doc__ = method.__doc__
    return converted


# ----- capture ----------------------------------------------------------------------------------
def capture(fn, args: tuple, kwargs: dict | None = None, *, strict: bool = True, decompose=None):
    """Trace ``fn(*args, **kwargs)``; returns (graph, state {qualname: tensor}, constants, output).

    ``fn`` is a module (its parameters and buffers become ``get_attr`` nodes) or a function.
    ``decompose(entry) -> bool`` picks ops whose inner ops are recorded instead of themselves.
    """
    from engine.fx.passes import dead_code_elimination
    from engine.nn import Module

    kwargs = kwargs or {}
    module = fn if isinstance(fn, Module) else None
    state = {}
    if module is not None:
        from engine.fx.graph_module import module_state

        state = {name: t for name, t, _ in module_state(module)}
    tracer = Tracer({id(t): name for name, t in reversed(list(state.items()))}, decompose)
    names = _input_names(module.forward if module is not None else fn, len(args))
    restore = _track_modules(module, tracer) if module is not None else []
    try:
        with tracer:
            for name, value in zip(names, args, strict=True):
                tracer.placeholder(name, value)
            for name, value in kwargs.items():
                tracer.placeholder(name, value)
            out = fn(*args, **kwargs)
            _check_output(out, strict)
            tracer.graph.output(tracer.arg(out))
    finally:
        for m in restore:
            m.__dict__.pop("forward", None)
    dead_code_elimination(tracer.graph)
    used = {n.target for n in tracer.graph.nodes if n.op == "get_attr"}
    constants = {k: v for k, v in tracer.constants.items() if k in used}
    return tracer.graph, state, constants, out


def _input_names(fn, count: int) -> list[str]:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params[:count]]
    return names + [f"args_{i}" for i in range(len(names), count)]


def _track_modules(module, tracer: Tracer) -> list:
    """Wrap each submodule's forward (an instance attribute, removed after) to know the module path."""
    wrapped = []
    for path, m in module.named_modules():
        if "forward" in m.__dict__:
            continue
        m.__dict__["forward"] = _scoped(m.forward, path, type(m).__name__, tracer)
        wrapped.append(m)
    return wrapped


def _scoped(forward, path: str, kind: str, tracer: Tracer):
    def forward_in_scope(*args, **kwargs):
        tracer.module_stack.append((path, kind))
        try:
            return forward(*args, **kwargs)
        finally:
            tracer.module_stack.pop()

    return forward_in_scope


def _check_output(out, strict: bool) -> None:
    if not strict:
        return
    for kind, name, use in ((list, "list", "tuple"), (dict, "dict", "NamedTuple")):
        if isinstance(out, kind):
            raise RuntimeError(f"Encountering a {name} at the output of the tracer might cause the trace to be "
                               "incorrect, this is only valid if the container structure does not change based on "
                               f"the module's inputs. Consider using a constant container instead (e.g. for "
                               f"`{name}`, use a `{use}` instead). If you absolutely need this and know the side "
                               "effects, pass strict=False to trace() to allow this behavior.")
