"""A graph as JSON: nodes name their ops by registry name, so loading runs no saved code."""

from __future__ import annotations

import importlib
import math
import operator

from engine.fx import registry
from engine.fx.graph import Graph, Node, target_name

_OPERATORS = {f"operator.{n}": getattr(operator, n) for n in ("add", "sub", "mul", "floordiv", "mod", "neg",
                                                               "getitem", "truediv", "pow")}


def graph_to_json(graph: Graph) -> list:
    """The nodes of ``graph`` as a JSON-ready list."""
    out = []
    for node in graph.nodes:
        item = {"name": node.name, "op": node.op, "args": _encode(node.args, node), "kwargs": _encode(node.kwargs, node)}
        item["target"] = target_name(node.target) if node.op == "call_function" else node.target
        meta = {k: node.meta[k] for k in ("module_path", "module_type") if k in node.meta}
        if "shape" in node.meta:
            meta["shape"] = list(node.meta["shape"])
            meta["dtype"] = node.meta["dtype"].name
        item["meta"] = meta
        out.append(item)
    return out


def graph_from_json(items: list) -> Graph:
    """Rebuild a graph written by ``graph_to_json``; an unknown op raises naming it."""
    from engine.dtypes import as_dtype

    graph = Graph()
    by_name: dict[str, Node] = {}
    for item in items:
        op = item["op"]
        target = _resolve(item["target"]) if op == "call_function" else item["target"]
        node = Node(graph, item["name"], op, target, _decode(item["args"], by_name), _decode(item["kwargs"], by_name))
        graph._names.add(node.name)
        graph._nodes.append(node)
        meta = dict(item.get("meta", {}))
        if "shape" in meta:
            meta["shape"] = tuple(meta["shape"])
            meta["dtype"] = as_dtype(meta["dtype"])
        node.meta = meta
        by_name[node.name] = node
    return graph


def _resolve(name: str):
    if name in _OPERATORS:
        return _OPERATORS[name]
    if name in registry.REGISTRY or name in registry.ALIASES:
        return registry.lookup(name).call
    if name.endswith(".apply"):  # an autograd Function that no registered op covered
        module_name, _, qualname = name[: -len(".apply")].rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), qualname)
        except (ImportError, AttributeError):
            raise RuntimeError(f"unknown op {name!r}: its autograd Function cannot be imported here") from None
        from engine.autograd.function import Function

        if isinstance(cls, type) and issubclass(cls, Function):
            return cls.apply  # type: ignore[attr-defined]
    registry.lookup(name)  # raises naming the op
    raise AssertionError(name)


def _encode(a, node: Node):
    from engine.device import device as device_type
    from engine.dtypes import dtype as dtype_type

    if isinstance(a, Node):
        return {"$node": a.name}
    if a is None or isinstance(a, bool | str | int):
        return a
    if isinstance(a, float):
        return a if math.isfinite(a) else {"$float": repr(a)}
    if isinstance(a, tuple):
        return {"$tuple": [_encode(v, node) for v in a]}
    if isinstance(a, list):
        return [_encode(v, node) for v in a]
    if isinstance(a, dict):
        return {"$dict": [[_encode(k, node), _encode(v, node)] for k, v in a.items()]}
    if isinstance(a, slice):
        return {"$slice": [_encode(v, node) for v in (a.start, a.stop, a.step)]}
    if a is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(a, dtype_type):
        return {"$dtype": a.name}
    if isinstance(a, device_type):
        return {"$device": str(a)}
    raise TypeError(f"can't save node {node.name} ({target_name(node.target)}): its argument of type "
                    f"{type(a).__name__} has no JSON form")


def _decode(a, nodes: dict):
    from engine.device import device as device_type
    from engine.dtypes import as_dtype

    if isinstance(a, list):
        return [_decode(v, nodes) for v in a]
    if not isinstance(a, dict):
        return a
    if "$node" in a:
        return nodes[a["$node"]]
    if "$tuple" in a:
        return tuple(_decode(v, nodes) for v in a["$tuple"])
    if "$dict" in a:
        return {_decode(k, nodes): _decode(v, nodes) for k, v in a["$dict"]}
    if "$slice" in a:
        return slice(*(_decode(v, nodes) for v in a["$slice"]))
    if "$ellipsis" in a:
        return Ellipsis
    if "$float" in a:
        return float(a["$float"])
    if "$dtype" in a:
        return as_dtype(a["$dtype"])
    if "$device" in a:
        return device_type(a["$device"])
    raise ValueError(f"corrupt graph file: unknown value {a!r}")
