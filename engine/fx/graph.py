"""``Graph`` and ``Node``: a captured program as a list of nodes (as ``torch.fx``).

A node is one of ``placeholder`` (an input), ``get_attr`` (a parameter, buffer or constant of the
owning module, by qualified name), ``call_function`` (an op from the registry, or an autograd
``Function``) and ``output``. Arguments are other nodes and constants (numbers, tuples, slices,
dtypes ...); ``meta`` holds the output's shape and dtype and the module the op ran in.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator

_OPERATOR_SYMBOLS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.floordiv: "//",
                     operator.mod: "%", operator.truediv: "/", operator.pow: "**"}


_DUNDER_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
                   "matmul": "@", "and": "&", "or": "|", "xor": "^"}


class Node:
    """One operation of a graph."""

    def __init__(self, graph: Graph, name: str, op: str, target, args: tuple = (), kwargs: dict | None = None):
        self.graph = graph
        self.name = name
        self.op = op
        self.target = target
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.meta: dict = {}
        self.users: dict[Node, None] = {}
        for n in self.all_input_nodes:
            n.users[self] = None

    @property
    def all_input_nodes(self) -> list[Node]:
        found: list[Node] = []
        map_arg((self.args, self.kwargs), lambda n: found.append(n) if n not in found else None)
        return found

    def replace_all_uses_with(self, other: Node) -> list[Node]:
        """Point every user of this node at ``other``; returns the users changed."""
        users = list(self.users)
        for user in users:
            user._set_args(*map_arg((user.args, user.kwargs), lambda n: other if n is self else n))
        return users

    def _set_args(self, args, kwargs) -> None:
        for n in self.all_input_nodes:
            n.users.pop(self, None)
        self.args, self.kwargs = tuple(args), dict(kwargs)
        for n in self.all_input_nodes:
            n.users[self] = None

    @property
    def op_name(self) -> str:
        """The registry name of the op (``engine.relu``), or the target's name."""
        return target_name(self.target) if self.op == "call_function" else str(self.target)

    def format_node(self) -> str:
        if self.op == "output":
            return f"return {_fmt(self.args[0])}"
        head = f"%{self.name} : [num_users={len(self.users)}] = {self.op}[target={self.op_name}]"
        if self.op == "call_function":
            head += f"(args = {_fmt(self.args)}, kwargs = {_fmt(self.kwargs)})"
        return head

    def __repr__(self) -> str:
        return self.name


class Graph:
    """An ordered list of nodes with construction helpers, printing and ``.code`` rendering.

    Example:
        >>> g = Graph()
        >>> x = g.placeholder("x")
        >>> g.output(g.call_function(engine.relu, (x,)))  # doctest: +SKIP
    """

    def __init__(self):
        self._nodes: list[Node] = []
        self._names: set[str] = set()

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    def find_nodes(self, *, op: str, target=None) -> list[Node]:
        """The nodes with opcode ``op`` (and ``target``, when given), in order."""
        return [n for n in self._nodes if n.op == op and (target is None or n.target == target)]

    # ----- construction -----------------------------------------------------------------------
    def _unique(self, hint: str) -> str:
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in hint) or "node"
        if base[0].isdigit():
            base = "_" + base
        name, n = base, 0
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def create_node(self, op: str, target, args=(), kwargs=None, name: str | None = None) -> Node:
        node = Node(self, self._unique(name or _hint(op, target)), op, target, args, kwargs)
        output = self._nodes[-1] if self._nodes and self._nodes[-1].op == "output" else None
        if output is not None and op != "output":
            self._nodes.insert(len(self._nodes) - 1, node)
        else:
            self._nodes.append(node)
        return node

    def placeholder(self, name: str) -> Node:
        return self.create_node("placeholder", name, name=name)

    def get_attr(self, qualified_name: str) -> Node:
        return self.create_node("get_attr", qualified_name, name=qualified_name.replace(".", "_"))

    def _make_attr(self, qualified_name: str) -> Node:
        """A get_attr node not yet placed in the node list."""
        return Node(self, self._unique(qualified_name.replace(".", "_")), "get_attr", qualified_name)

    def call_function(self, target, args=(), kwargs=None, name: str | None = None) -> Node:
        return self.create_node("call_function", target, args, kwargs, name=name)

    def output(self, result) -> Node:
        return self.create_node("output", "output", (result,), name="output")

    def erase_node(self, node: Node) -> None:
        if node.users:
            raise RuntimeError(f"Tried to erase Node {node.name} but it still had {len(node.users)} users in the "
                               f"graph: {list(node.users)}!")
        node._set_args((), {})
        self._nodes.remove(node)

    # ----- passes -----------------------------------------------------------------------------
    def eliminate_dead_code(self) -> bool:
        """Remove pure nodes whose values nobody uses; returns whether the graph changed."""
        from engine.fx.passes import dead_code_elimination

        return dead_code_elimination(self) > 0

    def lint(self) -> None:
        """Check that every node's inputs are defined before it and belong to this graph."""
        seen: set = set()
        for node in self._nodes:
            for n in node.all_input_nodes:
                if n.graph is not self or n not in seen:
                    raise RuntimeError(f"node {node.name} uses {n.name}, which is not defined before it")
            seen.add(node)

    # ----- printing ---------------------------------------------------------------------------
    def __str__(self) -> str:
        params = ", ".join(n.name for n in self._nodes if n.op == "placeholder")
        lines = [f"graph({params}):"] + [f"    {n.format_node()}" for n in self._nodes]
        return "\n".join(lines)

    def print_tabular(self) -> None:
        """Print one row per node: opcode, name, target, args, kwargs (as ``torch.fx``)."""
        rows = [["opcode", "name", "target", "args", "kwargs"]]
        rows += [[n.op, n.name, n.op_name, _fmt(n.args), _fmt(n.kwargs)] for n in self._nodes]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        print("\n".join(lines))

    def python_code(self, root_module: str = "self") -> str:
        """The graph as readable Python-like source of a ``forward`` function."""
        params = ", ".join(["self", *[n.name for n in self._nodes if n.op == "placeholder"]])
        body = []
        for n in self._nodes:
            if n.op == "get_attr":
                body.append(f"{n.name} = {_attr_code(root_module, n.target)}")
            elif n.op == "call_function":
                body.append(f"{n.name} = {_call_code(n)}")
            elif n.op == "output":
                body.append(f"return {_code(n.args[0])}")
        return f"def forward({params}):\n" + "\n".join(f"    {line}" for line in body) + "\n"


def _attr_code(root: str, qualified_name: str) -> str:
    expr = root
    for part in qualified_name.split("."):
        expr = f"{expr}.{part}" if part.isidentifier() else f"getattr({expr}, {part!r})"
    return expr


def _hint(op: str, target) -> str:
    if op == "call_function":
        name = target_name(target)
        return name.rsplit(".", 1)[-1].strip("_").lower() or "op"
    return str(target)


def target_name(target) -> str:
    """A printable, serializable name for a call_function target."""
    from engine.fx import registry

    entry = registry.of(target)
    if entry is not None:
        return entry.name
    owner = getattr(target, "__self__", None)
    if isinstance(owner, type):  # an autograd Function's apply
        return f"{owner.__module__}.{owner.__qualname__}.apply"
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"


def _call_code(n: Node) -> str:
    symbol = _OPERATOR_SYMBOLS.get(n.target)
    if symbol is not None and len(n.args) == 2:
        return f"{_code(n.args[0])} {symbol} {_code(n.args[1])}"
    if n.target is operator.getitem:
        return f"{_code(n.args[0])}[{_code(n.args[1])}]"
    name = n.op_name
    args = [_code(a) for a in n.args] + [f"{k}={_code(v)}" for k, v in n.kwargs.items()]
    if name.startswith("Tensor.") and n.args:
        method = name[len("Tensor."):]
        symbol = _DUNDER_SYMBOLS.get(method.strip("_").removeprefix("r"))
        if symbol is not None and len(args) == 2 and not n.kwargs:
            first, second = (args[1], args[0]) if method.startswith("__r") else (args[0], args[1])
            return f"{first} {symbol} {second}"
        if method == "__getitem__":
            return f"{args[0]}[{args[1]}]"
        if method in ("T", "mT", "H", "mH", "data"):
            return f"{args[0]}.{method}"
        return f"{args[0]}.{method}({', '.join(args[1:])})"
    return f"{name}({', '.join(args)})"


def _code(a) -> str:
    if isinstance(a, Node):
        return a.name
    if isinstance(a, tuple):
        inner = ", ".join(_code(v) for v in a)
        return f"({inner},)" if len(a) == 1 else f"({inner})"
    if isinstance(a, list):
        return "[" + ", ".join(_code(v) for v in a) + "]"
    if isinstance(a, dict):
        return "{" + ", ".join(f"{k!r}: {_code(v)}" for k, v in a.items()) + "}"
    if isinstance(a, slice):
        parts = ["" if v is None else _code(v) for v in (a.start, a.stop, a.step)]
        return ":".join(parts[:2] if a.step is None else parts)
    if a is Ellipsis:
        return "..."
    return repr(a)


def _fmt(a) -> str:
    if isinstance(a, Node):
        return f"%{a.name}"
    if isinstance(a, tuple):
        inner = ", ".join(_fmt(v) for v in a)
        return f"({inner},)" if len(a) == 1 else f"({inner})"
    if isinstance(a, list):
        return "[" + ", ".join(_fmt(v) for v in a) + "]"
    if isinstance(a, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in a.items()) + "}"
    return repr(a)


def map_arg(a, fn):
    """Apply ``fn`` to every Node inside a nested argument, rebuilding the containers."""
    if isinstance(a, Node):
        return fn(a)
    if isinstance(a, tuple):
        return tuple(map_arg(v, fn) for v in a)
    if isinstance(a, list):
        return [map_arg(v, fn) for v in a]
    if isinstance(a, dict):
        return {k: map_arg(v, fn) for k, v in a.items()}
    if isinstance(a, slice):
        return slice(map_arg(a.start, fn), map_arg(a.stop, fn), map_arg(a.step, fn))
    return a
