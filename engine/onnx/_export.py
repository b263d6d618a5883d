"""``export``: capture, fold constants, lower every node through the op registry, check, write."""

from __future__ import annotations

import operator
import os

import numpy as np

from engine.fx import registry
from engine.fx.graph import map_arg
from engine.onnx._context import ELEM_TYPES, LoweringContext, UnsupportedOperatorError
from engine.tensor import Tensor

_exporting = [False]
_QUANTIZED = ("quint8", "qint8", "qint32")


def is_in_onnx_export() -> bool:
    """Whether an ONNX export is running (``torch.onnx.is_in_onnx_export``)."""
    return _exporting[0]


class ONNXProgram:
    """The exported model: ``model_proto`` (an ``onnx.ModelProto``) and ``save(path)``."""

    def __init__(self, model_proto):
        self.model_proto = model_proto

    def save(self, destination) -> None:
        _write(self.model_proto, destination)


def export(model, args=(), f=None, *, kwargs=None, export_params: bool = True, verbose=None, input_names=None,
           output_names=None, opset_version: int | None = None, dynamic_axes=None,
           keep_initializers_as_inputs: bool = False, dynamo: bool = False, external_data: bool = True,
           dynamic_shapes=None, do_constant_folding: bool = True, training=None, operator_export_type=None,
           custom_opsets=None, export_modules_as_functions: bool = False, report: bool = False,
           optimize: bool = False, verify: bool = False, fallback: bool = False, **ignored) -> ONNXProgram:
    """Export ``model(*args)`` to ONNX (``torch.onnx.export``'s signature; ``dynamo`` and friends are ignored).

    Args:
        model: an ``nn.Module`` (call ``.eval()`` first for inference) or a function.
        args: a tensor or a tuple of inputs (a trailing dict holds keyword inputs).
        f: a path or binary file to write; None returns the program only.
        input_names / output_names: names of the graph's inputs and (flattened) outputs.
        dynamic_axes: ``{name: {axis: "dim_name"}}`` or ``{name: [axis, ...]}``: dimensions left symbolic.
        opset_version: the ONNX opset (default 17).
        do_constant_folding: fold constant subgraphs before lowering.
        export_params: store the weights as initializers (else they become graph inputs).
    """
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("engine.onnx.export needs the onnx package: pip install 'kiln[onnx]' (or pip install "
                          "onnx)") from None
    from engine.autograd.grad_mode import no_grad
    from engine.fx.graph_module import GraphModule
    from engine.fx.passes import constant_fold
    from engine.fx.tracer import capture
    from engine.onnx import lowerings

    lowerings.install()
    args = (args,) if isinstance(args, Tensor) else tuple(args)
    kwargs = dict(kwargs or {})
    if args and isinstance(args[-1], dict):
        kwargs.update(args[-1])
        args = args[:-1]
    opset = opset_version or 17
    _exporting[0] = True
    try:
        with no_grad():
            # NOTE: a decomposable op with no lowering of its own is recorded as the ops it calls.
            graph, state, constants, _ = capture(model, args, kwargs, strict=False,
                                                 decompose=lambda entry: entry.onnx is None and entry.decompose)
            gm = GraphModule(state, graph, type(model).__name__, constants)
            if do_constant_folding:
                constant_fold(gm)
            proto = _lower(gm, opset, input_names, output_names, dynamic_axes or {}, export_params, helper,
                           numpy_helper)
    finally:
        _exporting[0] = False
    proto.ir_version = min(onnx.IR_VERSION, 10)
    onnx.checker.check_model(proto)
    if f is not None:
        _write(proto, f)
    return ONNXProgram(proto)


def _lower(gm, opset, input_names, output_names, dynamic_axes, export_params, helper, numpy_helper):
    ctx = LoweringContext(helper, numpy_helper)
    env: dict = {}
    inputs, outputs = [], []
    leaves: list = []  # (node, default name): every tensor input, those inside tuple arguments flattened
    structures = {n: _input_structure(n, n.name, leaves) for n in gm.graph.nodes if n.op == "placeholder"}
    names = dict(zip([name for _, name in leaves], list(input_names or []), strict=False))
    for leaf, default in leaves:
        name = names.get(default, default)
        ctx.dtypes[name] = leaf.meta["dtype"]
        inputs.append(_value_info(helper, name, leaf.meta, dynamic_axes.get(name)))
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node] = _renamed(structures[node], names)
        elif node.op == "get_attr":
            value = gm.get_attr_value(node.target)
            env[node] = node.target
            ctx.dtypes[node.target] = value.dtype
            if getattr(value, "is_quantized", False):  # int8 weights: the integers, their qparams aside
                from engine.onnx.quantized_lowerings import QParams

                ctx.qparams[node.target] = QParams.of(value)
                value = value.int_repr()
            array = np.ascontiguousarray(value.detach().numpy(force=True))
            if export_params or node.target in gm._constant_names:
                ctx.initializers.append(numpy_helper.from_array(array, node.target))
            else:
                inputs.append(_value_info(helper, node.target, {"shape": array.shape, "dtype": value.dtype}, None))
        elif node.op == "call_function":
            entry = registry.of(node.target)
            if entry is None or entry.onnx is None:
                path, kind = node.meta.get("module_path", ""), node.meta.get("module_type", "")
                where = f" (in module '{path}' ({kind}))" if kind else ""
                name = node.op_name
                if "inside" in node.meta:  # a Function the op decomposed into: name the op the model called
                    name = node.meta["inside"] if entry is None else name
                    where += "" if entry is None else f", called by {node.meta['inside']}"
                raise UnsupportedOperatorError(f"Exporting the operator '{name}' to ONNX opset version "
                                               f"{opset} is not supported{where}: it has no ONNX lowering")
            load = env.__getitem__
            value = entry.onnx(ctx, node, *map_arg(node.args, load), **map_arg(node.kwargs, load))
            env[node] = value
            if isinstance(value, str) and "dtype" in node.meta:
                ctx.dtypes[value] = node.meta["dtype"]
                if node.meta["dtype"].name in _QUANTIZED and value not in ctx.qparams:
                    # NOTE: only value-preserving ops run on a QTensor (dropout in eval ...): same qparams.
                    operands: list = []
                    map_arg(node.args, lambda n, found=operands: found.append(env[n]))
                    source = next((q for q in operands if isinstance(q, str) and q in ctx.qparams), None)
                    if source is not None:
                        ctx.qparams[value] = ctx.qparams[source]
        else:
            results: list = []
            map_arg(node.args[0], results.append)
            wanted = list(output_names or []) + [f"output_{i}" for i in range(len(output_names or []), len(results))]
            for source, name in zip(results, wanted, strict=False):
                ctx.nodes.append(helper.make_node("Identity", [env[source]], [name], name=ctx.fresh("output")))
                outputs.append(_value_info(helper, name, source.meta, dynamic_axes.get(name), shape=False))
    graph = helper.make_graph(ctx.nodes, "main_graph", inputs, outputs, ctx.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="engine")


def _input_structure(node, name: str, leaves: list):
    """A placeholder as ONNX sees it: one input name, or ``{index: ...}`` for a tuple/list/dict argument
    (``(input, (h, c))`` becomes inputs ``input``, ``hidden_0``, ``hidden_1``, as torch.onnx flattens them)."""
    if "dtype" in node.meta:
        leaves.append((node, name))
        return name
    return {user.args[1]: _input_structure(user, f"{name}_{user.args[1]}", leaves) for user in node.users
            if user.op == "call_function" and user.target is operator.getitem}


def _renamed(structure, names: dict):
    if isinstance(structure, dict):
        return {key: _renamed(value, names) for key, value in structure.items()}
    return names.get(structure, structure)


def _value_info(helper, name, meta, axes, shape: bool = True):
    dtype = meta.get("dtype")
    elem = ELEM_TYPES.get(dtype.name, 1) if dtype is not None else 1
    if "shape" not in meta:
        return helper.make_tensor_value_info(name, elem, None)
    # NOTE: an output's dims are left unnamed (rank only) unless dynamic_axes names them.
    dims = list(meta["shape"]) if shape else [None] * len(meta["shape"])
    for axis, dim_name in (axes.items() if isinstance(axes, dict) else ((a, f"{name}_dim_{a}") for a in axes or [])):
        dims[axis] = dim_name
    return helper.make_tensor_value_info(name, elem, dims)


def _write(proto, f) -> None:
    data = proto.SerializeToString()
    if hasattr(f, "write"):
        f.write(data)
        return
    with open(os.fspath(f), "wb") as out:
        out.write(data)
