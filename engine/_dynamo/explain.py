"""``engine._dynamo.explain``: how a function splits into graphs, and why (as ``torch._dynamo.explain``)."""

from __future__ import annotations

import dataclasses
import time
import warnings

from engine._dynamo.capture import GraphCompileReason
from engine.fx.graph import Graph, Node, map_arg


@dataclasses.dataclass
class ExplainOutput:
    """What ``explain(fn)(*args)`` returns."""

    graphs: list
    graph_count: int
    graph_break_count: int
    break_reasons: list[GraphCompileReason]
    op_count: int
    ops_per_graph: list | None = None
    out_guards: list | None = None
    compile_times: str | None = None

    def __str__(self) -> str:
        out = f"Graph Count: {self.graph_count}\nGraph Break Count: {self.graph_break_count}\n"
        out += f"Op Count: {self.op_count}\nBreak Reasons:\n"
        for i, reason in enumerate(self.break_reasons):
            out += f"  Break Reason {i + 1}:\n    Reason: {reason.reason}\n    User Stack:\n"
            out += "".join(f"      {frame}\n" for frame in reason.user_stack)
        if self.ops_per_graph is not None:
            out += "Ops per Graph:\n"
            for i, ops in enumerate(self.ops_per_graph):
                out += f"  Ops {i + 1}:\n" + "".join(f"    {op}\n" for op in ops)
        if self.out_guards is not None:
            out += "Out Guards:\n"
            for i, guard in enumerate(self.out_guards):
                out += f"  Guard {i + 1}:\n    {guard}"
        if self.compile_times is not None:
            out += f"Compile Times: {self.compile_times}\n"
        return out


def explain(f, *extra_args, **extra_kwargs):
    """``explain(fn)(*args, **kwargs)`` runs ``fn`` once under capture and reports its graphs and breaks.

    Example:
        >>> report = engine._dynamo.explain(fn)(engine.randn(3))  # doctest: +SKIP
        >>> report.graph_break_count  # doctest: +SKIP
    """
    def inner(*args, **kwargs):
        from engine._dynamo.eval_frame import CompiledFunction

        compiled = CompiledFunction(f, root=f if _is_module(f) else None, backend="eager")
        start = time.perf_counter()
        compiled(*args, **kwargs)
        elapsed = time.perf_counter() - start
        graphs, ops, reasons, guards = [], [], [], []
        for entry in compiled._entries():
            captured = entry.captured
            reasons += captured.breaks
            guards += entry.guards
            for gm in split_at_breaks(captured):
                graphs.append(gm)
                ops.append([n.target for n in gm.graph.nodes if n.op == "call_function"])
        return ExplainOutput(graphs, len(graphs), len(reasons), reasons, sum(len(o) for o in ops), ops, guards,
                             f"TorchDynamo compilation metrics:\nFunction, Runtimes (s)\n_compile, {elapsed:.4f}")

    if extra_args or extra_kwargs:
        warnings.warn("explain(f, *args, **kwargs) is deprecated, use explain(f)(*args, **kwargs) instead.",
                      FutureWarning, stacklevel=2)
        return inner(*extra_args, **extra_kwargs)
    return inner


def _is_module(f) -> bool:
    from engine.nn.modules.module import Module

    return isinstance(f, Module)


def split_at_breaks(captured) -> list:
    """The captured graph as one GraphModule per stretch between graph breaks (empty stretches dropped)."""
    from engine.fx.graph_module import GraphModule

    nodes = captured.graph.nodes
    segments = sorted({n.meta.get("segment", 0) for n in nodes if n.op == "call_function"})
    out = []
    final = [n for n in nodes if n.op == "output"]
    final_uses = set(final[0].all_input_nodes) if final else set()
    for seg in segments:
        g = Graph()
        mapping: dict[Node, Node] = {}
        members = [n for n in nodes if n.op == "call_function" and n.meta.get("segment", 0) == seg]
        member_set = set(members)

        def load(n: Node, g=g, mapping=mapping, member_set=member_set) -> Node:
            if n not in mapping:
                if n.op == "get_attr":
                    mapping[n] = g.get_attr(n.target)
                else:  # an input of this stretch: a placeholder or an earlier graph's value
                    mapping[n] = g.placeholder(n.name)
                mapping[n].meta.update(n.meta)
            return mapping[n]

        for n in members:
            args = map_arg(n.args, load)
            kwargs = map_arg(n.kwargs, load)
            new = g.call_function(n.target, args, kwargs)
            new.meta.update(n.meta)
            mapping[n] = new
        results = [mapping[n] for n in members
                   if n in final_uses or any(u not in member_set and u.op != "output" for u in n.users)]
        g.output(tuple(results))
        out.append(GraphModule(dict(captured.state), g))
    return out
