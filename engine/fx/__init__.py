"""``engine.fx``: the graph IR shared by ``engine.jit``, ``engine.export``, ``engine.onnx`` and ``engine.compile``.

Example:
    >>> gm = engine.export.export(model, (x,)).graph_module  # doctest: +SKIP
    >>> gm.graph.print_tabular()  # doctest: +SKIP
"""

from engine.fx.graph import Graph, Node, map_arg
from engine.fx.graph_module import GraphModule
from engine.fx.passes import constant_fold, dead_code_elimination
from engine.fx.registry import REGISTRY, OpDef, lookup, register, register_lowering, register_quantized
from engine.fx.tracer import SymInt, TracerWarning, capture

__all__ = ["REGISTRY", "Graph", "GraphModule", "Node", "OpDef", "SymInt", "TracerWarning", "capture",
           "constant_fold", "dead_code_elimination", "lookup", "map_arg", "register", "register_lowering",
           "register_quantized"]
