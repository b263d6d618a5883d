"""Replaying a captured graph: the graph becomes one generated Python function.

Each node is one direct call of the op's eager kernel (the registry's ``fn``, not the recording
wrapper), parameters and constants are bound once as globals of that function, and values live
in local variables: no interpreter loop, no argument mapping and no per-node lookups at replay.
"""

from __future__ import annotations

from engine.fx import registry
from engine.fx.graph import Node


def make_runner(gm, name: str = "compiled_graph"):
    """A function ``f(*placeholders) -> tuple of outputs`` running ``gm.graph`` (same outputs as ``gm``)."""
    registry.install()
    graph = gm.graph
    scope: dict = {}
    local: dict[Node, str] = {}
    params: list[str] = []
    body: list[str] = []

    def const(value) -> str:
        key = f"_k{len(scope)}"
        scope[key] = value
        return key

    def expr(a) -> str:
        if isinstance(a, Node):
            return local[a]
        if isinstance(a, tuple):
            return "(" + "".join(f"{expr(v)}, " for v in a) + ")"
        if isinstance(a, list):
            return "[" + ", ".join(expr(v) for v in a) + "]"
        if isinstance(a, dict) and any(_has_node(v) for v in a.values()):
            return "{" + ", ".join(f"{const(k)}: {expr(v)}" for k, v in a.items()) + "}"
        if isinstance(a, slice) and _has_node(a):
            return f"slice({expr(a.start)}, {expr(a.stop)}, {expr(a.step)})"
        if a is None or type(a) in (bool, int):
            return repr(a)
        return const(a)

    for i, node in enumerate(graph.nodes):
        var = f"v{i}"
        if node.op == "placeholder":
            params.append(var)
        elif node.op == "get_attr":
            scope[var] = gm.get_attr_value(node.target)
            local[node] = var
            continue
        elif node.op == "call_function":
            entry = registry.of(node.target)
            fn = entry.fn if entry is not None else node.target
            call = f"{const(fn)}({', '.join([expr(a) for a in node.args] + [f'{k}={expr(v)}' for k, v in node.kwargs.items()])})"
            if entry is not None and entry.mutates:
                body.append(call)
                var = expr(node.args[0])
            else:
                body.append(f"{var} = {call}")
        elif node.op == "output":
            body.append(f"return {expr(tuple(node.args[0]) if isinstance(node.args[0], tuple | list) else (node.args[0],))}")
        local[node] = var
    source = f"def {name}({', '.join(params)}):\n" + "".join(f"    {line}\n" for line in body or ["return ()"])
    code = compile(source, f"<engine.compile {name}>", "exec")
    exec(code, scope)  # noqa: S102 - the source is generated from the graph above, not user text
    fn = scope[name]
    fn.__source__ = source
    return fn


def _has_node(a) -> bool:
    if isinstance(a, Node):
        return True
    if isinstance(a, tuple | list):
        return any(_has_node(v) for v in a)
    if isinstance(a, dict):
        return any(_has_node(v) for v in a.values())
    if isinstance(a, slice):
        return any(_has_node(v) for v in (a.start, a.stop, a.step))
    return False
