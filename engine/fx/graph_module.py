"""``GraphModule``: a module that runs a ``Graph`` over its own parameters, buffers and constants."""

from __future__ import annotations

from engine.fx import registry
from engine.fx.graph import Graph, map_arg
from engine.nn import Module
from engine.nn.parameter import Parameter


class GraphModule(Module):
    """Holds parameters/buffers under their original qualified names and interprets ``graph``.

    Args:
        root: a module whose attributes the graph reads, or a dict ``{qualified name: tensor}``.
        graph: the program to run.
        class_name: the name shown by ``repr``.
        constants: tensors the graph reads that are neither parameters nor buffers.
    """

    def __init__(self, root, graph: Graph, class_name: str = "GraphModule", constants: dict | None = None):
        super().__init__()
        self.__dict__["graph"] = graph
        self.__dict__["_constant_names"] = set()
        self.__dict__["_class_name"] = class_name
        items = [(k, t, True) for k, t in root.items()] if isinstance(root, dict) else module_state(root)
        for name, t, persistent in items:
            self._put(name, t, persistent)
        if isinstance(root, Module):
            self.train(root.training)
        for name, t in (constants or {}).items():
            self.add_constant(t, name, exact=True)

    def _put(self, qualified_name: str, t, persistent: bool = True) -> None:
        *path, leaf = qualified_name.split(".")
        owner = self
        for part in path:
            child = owner._modules.get(part)
            if child is None:
                child = Module()
                owner._modules[part] = child
            owner = child
        if isinstance(t, Parameter):
            owner.register_parameter(leaf, t)
        else:
            owner.register_buffer(leaf, t, persistent=persistent)

    def add_constant(self, t, prefix: str = "_tensor_constant", exact: bool = False) -> str:
        """Store a tensor the graph reads by name (not in ``state_dict``); returns its name."""
        name, n = (prefix, 0) if exact else (f"{prefix}0", 0)
        while not exact and name in self._buffers:
            n += 1
            name = f"{prefix}{n}"
        self._put(name, t, persistent=False)
        self._constant_names.add(name)
        return name

    def drop_unused_constants(self) -> None:
        used = {n.target for n in self.graph.nodes if n.op == "get_attr"}
        for name in list(self._constant_names - used):
            self._buffers.pop(name, None)
            self._non_persistent_buffers_set.discard(name)
            self._constant_names.discard(name)

    def get_attr_value(self, qualified_name: str):
        owner = self
        for part in qualified_name.split("."):
            owner = getattr(owner, part)
        return owner

    @property
    def constants(self) -> dict:
        return {name: self._buffers[name] for name in sorted(self._constant_names)}

    @property
    def code(self) -> str:
        """The graph as readable Python-like source."""
        return self.graph.python_code()

    def print_readable(self, print_output: bool = True) -> str:
        text = f"class {self._class_name}(engine.nn.Module):\n" + "\n".join(
            f"    {line}" for line in self.code.splitlines()) + "\n"
        if print_output:
            print(text)
        return text

    def recompile(self) -> str:
        """Kept for torch.fx compatibility: the graph is interpreted, so there is nothing to regenerate."""
        return self.code

    def forward(self, *args, **kwargs):
        return run_graph(self, self.graph, args, kwargs)

    def _get_name(self) -> str:
        return self._class_name


def module_state(root: Module) -> list:
    """``(qualified name, tensor, persistent)`` for every parameter and buffer of ``root``."""
    out = []
    for path, m in root.named_modules():
        prefix = f"{path}." if path else ""
        out += [(prefix + k, p, True) for k, p in m._parameters.items() if p is not None]
        out += [(prefix + k, b, k not in m._non_persistent_buffers_set) for k, b in m._buffers.items()
                if b is not None]
    return out


def run_graph(owner, graph: Graph, args: tuple, kwargs: dict):
    """Interpret ``graph`` with ``args``/``kwargs`` as placeholder values (in order, then by name)."""
    env: dict = {}
    load = env.__getitem__
    position = 0
    for node in graph._nodes:
        op = node.op
        if op == "call_function":
            a = map_arg(node.args, load)
            value = node.target(*a, **map_arg(node.kwargs, load))
            entry = registry.of(node.target)
            env[node] = a[0] if entry is not None and entry.mutates else value
        elif op == "get_attr":
            env[node] = owner.get_attr_value(node.target)
        elif op == "placeholder":
            if position < len(args):
                env[node] = args[position]
                position += 1
            elif node.target in kwargs:
                env[node] = kwargs[node.target]
            else:
                raise TypeError(f"forward() missing required argument '{node.target}'")
        else:
            return map_arg(node.args[0], load)
    return None
