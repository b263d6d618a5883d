"""Backward passes as graph ops (AOT-autograd style), for the ``aot_eager`` and ``inductor`` backends.

Two forms, both traced during the one real call (``create_graph`` runs every backward formula as
tensor ops, which the tracer records):

- a training step (``loss.backward()`` inside the compiled function): the backward is traced in
  place, followed by a node that accumulates the gradients into ``.grad``; the whole step, optimizer
  included, replays with autograd off (``mode == "joint"``);
- a compiled forward whose outputs need gradients: the backward of the outputs with respect to the
  leaves is traced from tangent placeholders and split off as its own graph; at replay an autograd
  ``Function`` runs the forward graph and, on ``backward()``, the backward graph over the saved
  activations (``mode == "aot"``).

A backward formula that reads data the tracer cannot follow (an array computed outside the recorded
ops) makes the traced backward unsafe; the graph then keeps the opaque form, in which autograd
runs at replay as in eager (``mode == "plain"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.autograd.function import Function
from engine.autograd.grad_mode import enable_grad
from engine.autograd.grad_mode import state as grad_state
from engine.fx import registry
from engine.fx.graph import Graph, Node
from engine.tensor import Tensor

if TYPE_CHECKING:
    from engine.fx.graph_module import GraphModule


@dataclass
class AOTGraphs:
    """The forward graph (outputs, then saved activations) and the backward graph (saved, tangents -> grads)."""

    forward: Graph
    backward: Graph
    n_outputs: int
    diff_positions: list  # which outputs get a tangent
    leaf_sources: list  # ("input", index) or ("attr", qualified name) per gradient of the backward graph
    saved_examples: list = field(default_factory=list)
    tangent_examples: list = field(default_factory=list)
    output_examples: list = field(default_factory=list)
    # filled while tracing
    region: int = 0
    tangents: list = field(default_factory=list)
    leaf_nodes: list = field(default_factory=list)
    grad_nodes: list = field(default_factory=list)
    values: dict = field(default_factory=dict)


def trace_aot(tracer, real_grad, result, outputs: list):
    """Trace the backward of ``fn``'s differentiable outputs; None when there is none to trace."""
    from engine._dynamo.capture import _autograd_leaves, _mark_region, flatten_tensors, trace_grads
    from engine.creation import ones_like

    flat: list = []
    flatten_tensors(result, flat)
    diff, seen = [], set()
    for t in flat:
        node = tracer.env.get(id(t))
        if node is None or node in seen or not t._requires_grad:
            continue
        seen.add(node)
        if node.op != "call_function":  # an input or parameter returned as is: autograd stays eager
            return None
        diff.append((node, t))
    if not diff or _mutates_differentiable(tracer.graph):
        return None
    leaves = [t for t in _autograd_leaves(tuple(t for _, t in diff)) if t._requires_grad]
    leaf_nodes = [tracer.env.get(id(t)) for t in leaves]
    if not leaves or any(n is None or n.op not in ("placeholder", "get_attr") for n in leaf_nodes):
        return None
    tangents = [tracer._run(ones_like, (t,), {}) for _, t in diff]
    tangent_nodes = [tracer.placeholder(f"tangents_{i + 1}", g) for i, g in enumerate(tangents)]
    for node in tangent_nodes:
        node.meta["tangent"] = True
    tracer.regions += 1
    start = len(tracer.graph._nodes)
    _, grad_nodes = trace_grads(tracer, real_grad, tuple(t for _, t in diff), leaves, tuple(tangents))
    _mark_region(tracer, start, tracer.regions)
    grad_nodes = grad_nodes or []
    positions = [outputs.index(node) for node, _ in diff]
    values: dict = dict(tracer.ctx_values)
    for t in tracer.keep:
        node = tracer.env.get(id(t))
        if node is not None:
            values.setdefault(node, t)
    aot = AOTGraphs(tracer.graph, Graph(), len(outputs), positions, [], region=tracer.regions,
                    tangents=tangent_nodes, leaf_nodes=leaf_nodes, grad_nodes=grad_nodes, values=values)
    aot.tangent_examples = tangents
    return aot


def _mutates_differentiable(graph: Graph) -> bool:
    for node in graph.nodes:
        if node.op != "call_function" or not node.args or not isinstance(node.args[0], Node):
            continue
        entry = registry.of(node.target)
        short = entry.name.rsplit(".", 1)[-1] if entry is not None else ""
        in_place = entry is not None and (entry.mutates or (short.endswith("_") and not short.endswith("__"))
                                          or short.startswith("__i"))
        if in_place and node.args[0].meta.get("requires_grad"):
            return True
    return False


def settle(tracer, aot) -> str:
    """Choose the replayable form of the captured graph (see the module docstring); returns the mode."""
    mode = _settle(tracer, aot)
    if mode == "plain":  # autograd runs at replay: ops that kept their ctx for a traced backward apply as in eager
        from engine._dynamo.graph_ops import apply_pair

        for node in tracer.graph.nodes:
            if node.meta.get("ctx_forward"):
                node.target = apply_pair
    return mode


def _settle(tracer, aot) -> str:
    graph = tracer.graph
    if aot is not None:
        if tracer.unsafe:
            _drop_region(graph, lambda n: n.meta.get("joint") == aot.region, aot.tangents)
            return "plain"
        _split_backward(graph, aot)
        return "aot"
    if tracer.regions:
        if tracer.unsafe:
            if not _drop_region(graph, lambda n: "joint" in n.meta, []):
                tracer.graph_break("a traced backward pass could not be separated from the graph")
            return "plain"
        for node in reversed(graph.nodes):
            if "opaque_backward" in node.meta:
                graph.erase_node(node)
        return "joint"
    return "plain"


def _drop_region(graph: Graph, in_region, extra: list) -> bool:
    for node in reversed(graph.nodes):
        if in_region(node):
            if any(not in_region(u) for u in node.users):
                return False
            graph.erase_node(node)
    for node in extra:
        if not node.users:
            graph.erase_node(node)
    return True


def _split_backward(graph: Graph, aot: AOTGraphs) -> None:
    """Move the traced backward out of ``graph`` into ``aot.backward``; ``graph`` returns outputs + saved."""
    region = [n for n in graph.nodes if n.meta.get("joint") == aot.region]
    members = set(region)
    tangents = set(aot.tangents)
    saved: list[Node] = []

    def note(n) -> None:
        if isinstance(n, Node) and n not in members and n not in tangents and n.op != "get_attr" \
                and n not in saved:
            saved.append(n)

    for node in region:
        for n in node.all_input_nodes:
            note(n)
    for n in aot.grad_nodes:
        note(n)
    bw = aot.backward
    mapping: dict[Node, Node] = {}
    for i, n in enumerate(saved):
        mapping[n] = bw.placeholder(f"saved_{i}")
        mapping[n].meta.update({k: v for k, v in n.meta.items() if k in ("shape", "dtype")})
    for n in aot.tangents:
        mapping[n] = bw.placeholder(n.name)
        mapping[n].meta.update({k: v for k, v in n.meta.items() if k in ("shape", "dtype")})

    def load(n: Node) -> Node:
        if n not in mapping:  # a parameter or constant the backward reads
            mapping[n] = bw.get_attr(n.target)
            mapping[n].meta.update(n.meta)
        return mapping[n]

    from engine.fx.graph import map_arg

    for node in region:
        new = bw.call_function(node.target, map_arg(node.args, load), map_arg(node.kwargs, load))
        new.meta.update(node.meta)
        mapping[node] = new
    bw.output(tuple(None if n is None else load(n) for n in aot.grad_nodes))
    output = graph.find_nodes(op="output")[0]
    user_outputs = list(output.args[0])
    for node in reversed(region):
        graph.erase_node(node)
    for node in aot.tangents:
        graph.erase_node(node)
    output._set_args(((*user_outputs, *saved),), {})
    aot.saved_examples = [aot.values.get(n) for n in saved]
    aot.output_examples = [aot.values.get(n) for n in user_outputs]
    aot.leaf_sources = [("input", _placeholder_index(graph, n)) if n.op == "placeholder" else ("attr", n.target)
                        for n in aot.leaf_nodes]
    aot.values = {}


def _placeholder_index(graph: Graph, node: Node) -> int:
    return [n for n in graph.nodes if n.op == "placeholder"].index(node)


# ----- runtime ------------------------------------------------------------------------------------------
def no_grad_runner(runner):
    """``runner`` with autograd off (a joint graph computes its own gradients)."""

    def run(*inputs):
        previous = grad_state.enabled
        grad_state.enabled = False
        try:
            return runner(*inputs)
        finally:
            grad_state.enabled = previous

    run.__wrapped__ = runner  # type: ignore[attr-defined]
    return run


class AOTRuntime:
    """Calls the compiled forward through ``CompiledFunction`` so that backward runs the compiled backward."""

    def __init__(self, forward, backward, aot: AOTGraphs, attrs: dict, eager=None):
        self.forward = forward
        self.backward = backward
        self.eager = eager  # the forward graph run op by op: a differentiable backward (create_graph) replays it
        self.eager_replay: GraphModule | None = None  # ``eager`` with its ops applied through autograd, made on first need
        self.attrs = attrs
        self.n_outputs = aot.n_outputs
        self.diff_positions = aot.diff_positions
        self.sources = [(kind, where if kind == "input" else attrs[where]) for kind, where in aot.leaf_sources]

    def __call__(self, *inputs):
        diff = [inputs[where] if kind == "input" else where for kind, where in self.sources]
        return CompiledFunction.apply(self, inputs, *diff)

    def first_call(self, inputs: list, outputs: list, saved: list):
        """The captured call's own outputs, wired to the compiled backward (so that its gradients are
        those of every later call, bit for bit)."""
        values = tuple(t.detach() if isinstance(t, Tensor) else t for t in (*outputs, *saved))
        once = AOTRuntime.__new__(AOTRuntime)
        once.__dict__.update(self.__dict__)
        once.forward = lambda *_: values
        return once(*inputs)


class CompiledFunction(Function):
    """The autograd node of a compiled forward: its backward is the compiled backward graph."""

    @staticmethod
    def forward(ctx, runtime: AOTRuntime, inputs: tuple, *diff):
        outs = runtime.forward(*inputs)
        n = runtime.n_outputs
        ctx.runtime = runtime
        ctx.inputs, ctx.diff = inputs, diff
        ctx.saved_values = tuple(outs[n:])
        positions = runtime.diff_positions
        if len(positions) != n:  # outputs computed without gradient (under no_grad, or integers) stay so
            ctx.mark_non_differentiable(*(outs[i] for i in range(n) if i not in positions))
        return tuple(outs[:n])

    @staticmethod
    def backward(ctx, *grads):
        runtime = ctx.runtime
        saved = ctx.saved_values
        if saved is None:
            from engine.autograd.function import FREED_MESSAGE

            raise RuntimeError(FREED_MESSAGE)
        tangents = [grads[i] for i in runtime.diff_positions]
        for i, g in enumerate(tangents):
            if g is None:
                tangents[i] = _zeros_for(ctx, runtime.diff_positions[i])
        if grad_state.enabled and runtime.eager is not None:
            return (None, None, *_differentiable_backward(ctx, runtime, tangents))
        out = runtime.backward(*saved, *tangents)
        return (None, None, *out)

    def _release_extra(self) -> None:
        self.saved_values = None
        self.inputs = self.diff = None


def _differentiable_backward(ctx, runtime: AOTRuntime, tangents: list) -> tuple:
    """create_graph=True (a gradient penalty, a Hessian-vector product): the compiled backward computes on
    arrays, so the forward graph is replayed op by op and differentiated with a graph of its own."""
    from engine.autograd.graph import grad

    replay = runtime.eager_replay
    if replay is None:
        replay = runtime.eager_replay = _with_autograd(runtime.eager, runtime.attrs)
    with enable_grad():
        outs = replay.forward(*ctx.inputs)  # NOTE: not __call__: hooks and compile wrappers stay out
    targets = [outs[i] for i in runtime.diff_positions]
    return tuple(grad(targets, list(ctx.diff), tangents, create_graph=True, allow_unused=True))


def _zeros_for(ctx, position: int) -> Tensor:
    from engine.tensor import _make

    shape, dtype, device = ctx._out_meta[position]
    return _make(device.xp.zeros(shape, dtype.np), dtype, device)


def _with_autograd(gm, attrs: dict):
    """A copy of the forward GraphModule ``gm`` whose ``forward_with_ctx`` nodes apply their op through
    autograd (``apply_pair``), so that running it builds the history a create_graph backward needs."""
    from engine._dynamo.graph_ops import apply_pair, forward_with_ctx
    from engine.fx.graph import map_arg
    from engine.fx.graph_module import GraphModule

    copy = Graph()
    mapping: dict = {}
    for node in gm.graph.nodes:
        target = apply_pair if node.target is forward_with_ctx else node.target
        new = copy.create_node(node.op, target, map_arg(node.args, mapping.__getitem__),
                               map_arg(node.kwargs, mapping.__getitem__), name=node.name)
        new.meta.update(node.meta)
        mapping[node] = new
    return GraphModule(dict(attrs), copy, class_name="GraphModule")
