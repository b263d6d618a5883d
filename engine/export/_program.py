"""``export``, ``ExportedProgram`` and ``Dim``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.fx.graph import map_arg
from engine.fx.graph_module import GraphModule, run_graph
from engine.fx.tracer import capture
from engine.tensor import Tensor


class Dim:
    """A named dynamic dimension with optional bounds (``torch.export.Dim``).

    ``Dim.AUTO``/``Dim.DYNAMIC`` mark a dimension dynamic without a name; ``Dim.STATIC`` keeps it fixed.
    """

    AUTO: ClassVar[Dim]
    DYNAMIC: ClassVar[Dim]
    STATIC: ClassVar[None]

    def __init__(self, name: str, *, min: int | None = None, max: int | None = None):
        self.__name__ = name
        self.min = 0 if min is None else min
        self.max = max

    def __repr__(self) -> str:
        return f"Dim({self.__name__!r}, min={self.min}, max={self.max})"


Dim.AUTO = Dim("AUTO")
Dim.DYNAMIC = Dim("DYNAMIC")
Dim.STATIC = None


class _GuardedModule(GraphModule):
    """The module of an ``ExportedProgram``: checks static input dimensions, then runs the graph."""

    def forward(self, *args, **kwargs):
        _check_inputs(self._input_specs, args, kwargs)
        return run_graph(self, self.graph, args, kwargs)


@dataclass(frozen=True)
class ExportGraphSignature:
    """Which placeholders are user inputs and which get_attr names are parameters, buffers, constants."""

    user_inputs: list
    user_outputs: list
    parameters: list
    buffers: list
    constants: list


class ExportedProgram:
    """A captured program: ``graph_module``, ``graph``, ``state_dict`` and ``module()`` to run it."""

    def __init__(self, graph_module: GraphModule, input_specs: list, example_inputs: tuple):
        self.graph_module = graph_module
        self._input_specs = input_specs
        self.example_inputs = example_inputs

    @property
    def graph(self):
        return self.graph_module.graph

    @property
    def state_dict(self) -> dict:
        return self.graph_module.state_dict()

    @property
    def constants(self) -> dict:
        return self.graph_module.constants

    @property
    def graph_signature(self) -> ExportGraphSignature:
        gm = self.graph_module
        output = gm.graph.find_nodes(op="output")[-1]
        outputs: list = []
        map_arg(output.args[0], lambda n: outputs.append(n.name))
        return ExportGraphSignature([n.name for n in gm.graph.find_nodes(op="placeholder")], outputs,
                                    [k for k, _ in gm.named_parameters()],
                                    [k for k, _ in gm.named_buffers() if k not in gm._constant_names],
                                    sorted(gm._constant_names))

    def module(self) -> GraphModule:
        """A module running the program (it shares this program's parameters and buffers)."""
        return self.graph_module

    def __call__(self, *args, **kwargs):
        return self.graph_module(*args, **kwargs)

    def run_decompositions(self, decomp_table=None) -> ExportedProgram:
        return self

    def __str__(self) -> str:
        return f"ExportedProgram:\n{self.graph_module.print_readable(print_output=False)}"


def export(mod, args: tuple, kwargs: dict | None = None, *, dynamic_shapes=None, strict: bool = False,
           preserve_module_call_signature: tuple = ()) -> ExportedProgram:
    """Capture ``mod(*args, **kwargs)`` into an ``ExportedProgram``.

    Args:
        mod: an ``nn.Module``.
        args: the example positional inputs (a tuple).
        kwargs: example keyword inputs.
        dynamic_shapes: per input, ``{dim: Dim(...)}`` (or a tuple/list per dimension), as a dict
            keyed by argument name or a tuple in argument order. Unlisted dimensions are static:
            the program's module refuses other sizes.
        strict: accepted for compatibility; the capture is the same either way.
    """
    from engine.autograd.grad_mode import no_grad

    if not isinstance(args, tuple):
        raise ValueError(f"Expecting `args` to be a tuple of example positional inputs, got {type(args)}")
    kwargs = dict(kwargs or {})
    with no_grad():
        graph, _, constants, _ = capture(mod, args, kwargs, strict=False)
    gm = _GuardedModule(mod, graph, type(mod).__name__, constants)
    specs = _input_specs(mod, args, kwargs, dynamic_shapes)
    gm.__dict__["_input_specs"] = specs
    for node, spec in zip([n for n in graph.nodes if n.op == "placeholder"], specs, strict=False):
        node.meta["dynamic_dims"] = {d: dim.__name__ for d, dim in spec[2].items()} if spec else {}
    return ExportedProgram(gm, specs, args)


def _input_specs(mod, args, kwargs, dynamic_shapes) -> list:
    names = list(inspect.signature(mod.forward).parameters)
    values = list(args) + list(kwargs.values())
    keys = names[: len(args)] + list(kwargs)
    if dynamic_shapes is None:
        per_input = [None] * len(values)
    elif isinstance(dynamic_shapes, dict):
        unknown = set(dynamic_shapes) - set(keys)
        if unknown:
            raise ValueError(f"dynamic_shapes names {sorted(unknown)}, which are not inputs of "
                             f"{type(mod).__name__}.forward (inputs: {keys})")
        per_input = [dynamic_shapes.get(k) for k in keys]
    else:
        per_input = list(dynamic_shapes) + [None] * (len(values) - len(dynamic_shapes))
    specs: list[Any] = []
    for i, (value, spec) in enumerate(zip(values, per_input, strict=True)):
        if not isinstance(value, Tensor):
            specs.append(None)
            continue
        dims: dict = dict(enumerate(spec)) if isinstance(spec, tuple | list) else dict(spec or {})
        dynamic = {d % value.ndim: dim for d, dim in dims.items() if dim is not None}
        where = f"*args[{i}]" if i < len(args) else f"**kwargs[{keys[i]!r}]"
        specs.append((where, tuple(value._data.shape), dynamic))
    return specs


def _check_inputs(specs, args, kwargs) -> None:
    values = list(args) + list(kwargs.values())
    for spec, value in zip(specs, values, strict=False):
        if spec is None or not isinstance(value, Tensor):
            continue
        where, shape, dynamic = spec
        got = value._data.shape
        if len(got) != len(shape):
            raise RuntimeError(f"Unexpected number of dimensions in input at {where}.shape "
                               f"(expected {list(shape)}, got {list(got)})")
        for d, (expected, size) in enumerate(zip(shape, got, strict=True)):
            dim = dynamic.get(d)
            if dim is None and size != expected:
                raise RuntimeError(f"Expected input at {where}.shape[{d}] to be equal to {expected}, but got {size}")
            if dim is not None and size < dim.min:
                raise RuntimeError(f"Expected input at {where}.shape[{d}] to be >= {dim.min}, but got {size}")
            if dim is not None and dim.max is not None and size > dim.max:
                raise RuntimeError(f"Expected input at {where}.shape[{d}] to be <= {dim.max}, but got {size}")


def save(ep: ExportedProgram, f, *, extra_files=None, opset_version=None, pickle_protocol: int = 2) -> None:
    """Write an ``ExportedProgram`` to one file (graph JSON + safetensors weights, as ``engine.jit.save``)."""
    from engine.jit._serialization import save as save_graph

    if not isinstance(ep, ExportedProgram):
        raise TypeError(f"The 'ep' parameter must be an instance of 'ExportedProgram', got '{type(ep).__name__}' instead.")
    specs = [None if s is None else [s[0], list(s[1]), [[d, dim.__name__, dim.min, dim.max] for d, dim in s[2].items()]]
             for s in ep._input_specs]
    save_graph(ep.graph_module, f, _extra_files=extra_files, _record={"export_input_specs": specs})


def load(f, *, extra_files=None, expected_opset_version=None) -> ExportedProgram:
    """Read a file written by ``engine.export.save``."""
    from engine.jit._serialization import load as load_graph

    gm = load_graph(f, _extra_files=extra_files, _cls=_GuardedModule)
    saved = gm._record.get("export_input_specs")
    if saved is None:
        raise RuntimeError("not an engine.export file (it was written by engine.jit.save: load it with engine.jit.load)")
    specs = [None if s is None else (s[0], tuple(s[1]), {d: Dim(name, min=lo, max=hi) for d, name, lo, hi in s[2]})
             for s in saved]
    gm.__dict__["_input_specs"] = specs
    return ExportedProgram(gm, specs, ())
