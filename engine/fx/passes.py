"""Graph passes: dead-code elimination and constant folding."""

from __future__ import annotations

from engine.fx import registry
from engine.fx.graph import Graph, Node, map_arg


def is_impure(node: Node) -> bool:
    """Random and in-place ops (and placeholders/outputs) are never removed or folded."""
    if node.op in ("placeholder", "output"):
        return True
    if node.op != "call_function":
        return False
    entry = registry.of(node.target)
    return entry is not None and (entry.impure or entry.mutates)


def dead_code_elimination(graph: Graph) -> int:
    """Remove pure nodes whose values nobody uses (last to first); returns how many were removed."""
    removed = 0
    for node in reversed(graph.nodes):
        if not node.users and not is_impure(node):
            graph.erase_node(node)
            removed += 1
    return removed


def constant_fold(gm, fold_params: bool = False) -> int:
    """Evaluate nodes that depend only on constants (and parameters if ``fold_params``) once.

    A folded tensor becomes a new constant of ``gm`` read by a ``get_attr`` node; a folded number
    is written into its users' arguments. Returns the number of nodes folded.

    Example:
        >>> folded = constant_fold(traced)  # doctest: +SKIP
    """
    from engine.tensor import Tensor

    graph = gm.graph
    known: dict[Node, object] = {}
    for node in graph.nodes:
        if node.op == "get_attr" and (fold_params or node.target in gm._constant_names):
            known[node] = gm.get_attr_value(node.target)
    folded = 0
    for node in graph.nodes:
        if node.op != "call_function" or is_impure(node) or any(n not in known for n in node.all_input_nodes):
            continue
        value = node.target(*map_arg(node.args, known.__getitem__), **map_arg(node.kwargs, known.__getitem__))
        if isinstance(value, Tensor):
            name = gm.add_constant(value.detach(), "_folded_constant")
            graph._nodes.insert(graph._nodes.index(node), attr := graph._make_attr(name))
            attr.meta.update(node.meta)
            node.replace_all_uses_with(attr)
            known[attr] = value
        elif isinstance(value, int | float | bool) and node.users:
            for user in list(node.users):
                user._set_args(*map_arg((user.args, user.kwargs), lambda n, v=value, me=node: v if n is me else n))
        else:
            continue
        graph.erase_node(node)
        folded += 1
    dead_code_elimination(graph)
    gm.drop_unused_constants()
    return folded
