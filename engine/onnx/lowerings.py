"""ONNX lowerings, registered on the op registry's entries (``OpDef.onnx``).

A lowering is ``fn(ctx, node, *args, **kwargs)``: the op's arguments with tensors (and symbolic
sizes) replaced by ONNX value names; it returns the output name(s). Arguments are bound to the
eager kernel's signature first, so a lowering reads them by name whichever way they were passed.
"""

from __future__ import annotations

import inspect
import math
import operator

import numpy as np

import engine
from engine.fx import registry
from engine.onnx._context import UnsupportedOperatorError

F = engine.nn.functional
T = engine.Tensor
_installed = [False]


def _entry(fn) -> registry.OpDef:
    entry = registry.of(fn)
    if entry is None:
        raise KeyError(f"{fn!r} is not a registered op")
    return entry


def _bound(fn):
    """Register ``fn(ctx, node, a)`` for ops, with ``a`` the op's arguments by name (defaults applied)."""

    def decorate(lowering):
        for op in fn:
            entry = _entry(op)
            signature = inspect.signature(entry.fn)

            def run(ctx, node, *args, _sig=signature, **kwargs):
                bound = _sig.bind(*args, **kwargs)
                bound.apply_defaults()
                return lowering(ctx, node, bound.arguments)

            entry.onnx = run
        return lowering

    return decorate


def _unsupported(node, why: str):
    path, kind = node.meta.get("module_path", ""), node.meta.get("module_type", "")
    where = f" (in module '{path}' ({kind}))" if kind else ""
    return UnsupportedOperatorError(f"Exporting the operator '{node.op_name}' to ONNX is not supported{where}: {why}")


def _rank(node, i: int = 0) -> int:
    return len(node.args[i].meta["shape"])


def _pair(v, n: int = 2) -> list:
    return list(v) if isinstance(v, tuple | list) else [v] * n


def _dims(ctx, x: str, start: int, stop: int) -> str:
    """The sizes of dims start..stop-1 of ``x`` as a 1-D int64 value (symbolic where the input is)."""
    return ctx.op("Slice", [ctx.op("Shape", [x]), ctx.ints([start]), ctx.ints([stop])])


def _sizes(a: dict, keyword: str) -> list:
    """A sizes argument given as ``f(x, 2, 3)``, ``f(x, (2, 3))`` or ``f(x, keyword=(2, 3))``."""
    value = a.get(keyword)
    return _shape_arg(a.get("args", ()) if value is None else (value,))


def _shape_arg(shape) -> list:
    return list(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else list(shape)


def install() -> None:
    if _installed[0]:
        return
    _installed[0] = True
    _elementwise()
    _layers()
    _shapes()
    _norms()
    _more_layers()
    from engine.onnx import (
        linalg_lowerings,
        quantized_lowerings,
        rnn_lowerings,
        shape_lowerings,
        tensor_lowerings,
    )

    for module in (shape_lowerings, rnn_lowerings, tensor_lowerings, linalg_lowerings, quantized_lowerings):
        module.install()  # after the ones above: some reuse their lowerings
    for composite in _composites():
        _entry(composite).decompose = True


def _composites() -> tuple:
    """Ops built from lowered ops: the export records the ops inside them instead."""
    e = engine
    return (F.multi_head_attention_forward, F.rms_norm,
            # pointwise and statistics
            e.hypot, e.deg2rad, e.rad2deg, e.copysign, e.logaddexp, e.logaddexp2, e.ldexp, T.exp2, T.logit, T.sinc,
            e.nansum, e.nanmean, e.median, e.nanmedian, e.quantile, e.nanquantile, e.mode, e.aminmax, e.cummax,
            e.cummin, e.diff, e.dist, e.cov, e.trapezoid, e.cumulative_trapezoid,
            # index updates
            e.index_add, e.index_copy, e.index_fill, e.masked_scatter, e.take,
            # layout
            e.tensor_split, e.hsplit, e.vsplit, e.dsplit, e.column_stack, e.row_stack, e.vstack, e.dstack, e.atleast_3d, e.ravel,
            e.narrow_copy, e.rot90, e.meshgrid, T.unfold,
            # products
            e.kron, e.tensordot, e.vdot, e.cartesian_prod, e.combinations, e.addr, e.addbmm,
            # ATen spellings of nn.functional (engine/nn/functional/toplevel.py)
            e.embedding, e.constant_pad_nd, e.batch_norm)


def _elementwise() -> None:
    unary = {engine.relu: "Relu", F.relu: "Relu", engine.sigmoid: "Sigmoid", engine.tanh: "Tanh",
             engine.exp: "Exp", engine.log: "Log", engine.sqrt: "Sqrt", engine.neg: "Neg", T.__neg__: "Neg",
             engine.abs: "Abs", engine.erf: "Erf", T.contiguous: "Identity", engine.clone: "Identity",
             engine.logical_not: "Not", T.__invert__: "Not", engine.reciprocal: "Reciprocal", engine.sin: "Sin",
             engine.cos: "Cos", engine.floor: "Floor", engine.ceil: "Ceil", engine.sign: "Sign",
             engine.isnan: "IsNaN"}
    for fn, op_type in unary.items():
        _entry(fn).onnx = lambda ctx, node, x, *rest, _op=op_type, **kw: ctx.op(_op, [x])
    binary = {engine.add: "Add", T.__add__: "Add", engine.sub: "Sub", T.__sub__: "Sub", engine.mul: "Mul",
              T.__mul__: "Mul", engine.div: "Div", T.__truediv__: "Div", engine.matmul: "MatMul",
              T.__matmul__: "MatMul", engine.pow: "Pow", T.__pow__: "Pow", engine.maximum: "Max",
              engine.minimum: "Min", engine.eq: "Equal", engine.lt: "Less", engine.gt: "Greater",
              T.__and__: "And", T.__or__: "Or"}
    for fn, op_type in binary.items():
        _entry(fn).onnx = _binary(op_type, reflected=False)
    for fn, op_type in {T.__radd__: "Add", T.__rsub__: "Sub", T.__rmul__: "Mul", T.__rtruediv__: "Div"}.items():
        _entry(fn).onnx = _binary(op_type, reflected=True)
    for fn, op_type in {operator.add: "Add", operator.sub: "Sub", operator.mul: "Mul", operator.floordiv: "Div"}.items():
        _entry(fn).onnx = lambda ctx, node, a, b, _op=op_type: ctx.op(_op, [ctx.scalar_int(a), ctx.scalar_int(b)])
    _entry(operator.getitem).onnx = lambda ctx, node, seq, i: seq[i]

    @_bound([F.gelu])
    def gelu(ctx, node, a):
        x = a["input"]
        if a["approximate"] == "tanh":
            inner = ctx.op("Mul", [ctx.op("Add", [x, ctx.op("Mul", [ctx.tensor(0.044715, x), ctx.op(
                "Pow", [x, ctx.tensor(3.0, x)])])]), ctx.tensor(math.sqrt(2 / math.pi), x)])
            gate = ctx.op("Add", [ctx.op("Tanh", [inner]), ctx.tensor(1.0, x)])
        else:
            gate = ctx.op("Add", [ctx.op("Erf", [ctx.op("Div", [x, ctx.tensor(math.sqrt(2.0), x)])]),
                                  ctx.tensor(1.0, x)])
        return ctx.op("Mul", [ctx.op("Mul", [x, ctx.tensor(0.5, x)]), gate])

    _entry(engine.rsqrt).onnx = lambda ctx, node, x: ctx.op("Reciprocal", [ctx.op("Sqrt", [x])])
    _entry(engine.square).onnx = lambda ctx, node, x: ctx.op("Mul", [x, x])

    @_bound([F.silu])
    def silu(ctx, node, a):
        return ctx.op("Mul", [a["input"], ctx.op("Sigmoid", [a["input"]])])

    @_bound([engine.softmax, F.softmax, engine.log_softmax, F.log_softmax])
    def softmax(ctx, node, a):
        if a["dim"] is None:
            raise _unsupported(node, "pass dim= explicitly")
        op_type = "LogSoftmax" if "log" in node.op_name else "Softmax"
        return ctx.op(op_type, [a["input"]], axis=a["dim"])

    @_bound([F.dropout])
    def dropout(ctx, node, a):
        if a["training"] and a["p"] > 0:
            raise _unsupported(node, "dropout in training mode (call model.eval() before exporting)")
        return ctx.op("Identity", [a["input"]])


_ARITHMETIC = ("Add", "Sub", "Mul", "Div", "Max", "Min")


def _binary(op_type: str, reflected: bool):
    def lower(ctx, node, a, b, *rest, **kwargs):
        if kwargs.get("alpha", 1) != 1:
            b = ctx.op("Mul", [ctx.tensor(b, a), ctx.tensor(kwargs["alpha"], a)])
        first = a if isinstance(a, str) else b
        x, y = ctx.tensor(a, first), ctx.tensor(b, first)
        if op_type in _ARITHMETIC and "dtype" in node.meta:  # NOTE: ONNX has no type promotion: cast to the result's
            x, y = (_cast_to(ctx, v, node.meta["dtype"]) for v in (x, y))
        out = ctx.op(op_type, [y, x] if reflected else [x, y])
        mode = kwargs.get("rounding_mode")
        floating = node.meta["dtype"].is_floating_point
        if mode == "floor":
            out = ctx.op("Floor", [out]) if floating else floor_divide_ints(ctx, x, y, node.meta["dtype"])
        elif mode == "trunc" and floating:  # integer Div already truncates
            out = ctx.op("Mul", [ctx.op("Floor", [ctx.op("Abs", [out])]), ctx.op("Sign", [out])])
        return out

    return lower


def floor_divide_ints(ctx, x: str, y: str, dtype) -> str:
    """x // y for integers (ONNX's integer Div truncates: step down where the signs differ and it is inexact)."""
    from engine.onnx._context import ELEM_TYPES

    q = ctx.op("Div", [x, y])
    inexact = ctx.op("Not", [ctx.op("Equal", [ctx.op("Mul", [q, y]), x])])
    negative = ctx.op("Less", [ctx.op("Mul", [x, y]), ctx.tensor(0, x)])
    return ctx.op("Sub", [q, ctx.op("Cast", [ctx.op("And", [inexact, negative])], to=ELEM_TYPES[dtype.name])])


def _cast_to(ctx, name: str, dtype) -> str:
    from engine.onnx._context import ELEM_TYPES

    known = ctx.dtypes.get(name)
    if known is None or known is dtype or dtype.name not in ELEM_TYPES:
        return name
    out = ctx.op("Cast", [name], to=ELEM_TYPES[dtype.name])
    ctx.dtypes[out] = dtype
    return out


def _layers() -> None:
    @_bound([F.linear])
    def linear(ctx, node, a):
        if _rank(node) == 2:
            return ctx.op("Gemm", [a["input"], a["weight"], a["bias"]], transB=1)
        out = ctx.op("MatMul", [a["input"], ctx.op("Transpose", [a["weight"]], perm=[1, 0])])
        return out if a["bias"] is None else ctx.op("Add", [out, a["bias"]])

    @_bound([F.conv1d, F.conv2d])
    def conv(ctx, node, a):
        n = _rank(node) - 2
        if isinstance(a["padding"], str):
            raise _unsupported(node, f"padding={a['padding']!r} (pass the padding as numbers)")
        pads = _pair(a["padding"], n)
        return ctx.op("Conv", [a["input"], a["weight"], a["bias"]], strides=_pair(a["stride"], n), pads=pads + pads,
                      dilations=_pair(a["dilation"], n), group=a["groups"])

    @_bound([F.batch_norm])
    def batch_norm(ctx, node, a):
        if a["training"]:
            raise _unsupported(node, "batch_norm in training mode (call model.eval() before exporting)")
        channels = node.args[0].meta["shape"][1]
        scale = a["weight"] or ctx.const(np.ones(channels, np.float32))
        bias = a["bias"] or ctx.const(np.zeros(channels, np.float32))
        return ctx.op("BatchNormalization", [a["input"], scale, bias, a["running_mean"], a["running_var"]],
                      epsilon=a["eps"])

    @_bound([F.layer_norm])
    def layer_norm(ctx, node, a):
        n = len(_pair(a["normalized_shape"], 1))
        shape = node.args[0].meta["shape"][-n:]
        scale = a["weight"] or ctx.const(np.ones(shape, np.float32))
        return ctx.op("LayerNormalization", [a["input"], scale, a["bias"]], axis=-n, epsilon=a["eps"])

    @_bound([F.max_pool2d, F.avg_pool2d])
    def pool(ctx, node, a):
        kernel = _pair(a["kernel_size"])
        stride = _pair(a["stride"] if a["stride"] not in (None, ()) else kernel)
        pads = _pair(a["padding"]) * 2
        if "max" in node.op_name:
            if a["return_indices"]:
                raise _unsupported(node, "return_indices=True")
            return ctx.op("MaxPool", [a["input"]], kernel_shape=kernel, strides=stride, pads=pads,
                          dilations=_pair(a["dilation"]), ceil_mode=int(a["ceil_mode"]))
        return ctx.op("AveragePool", [a["input"]], kernel_shape=kernel, strides=stride, pads=pads,
                      ceil_mode=int(a["ceil_mode"]), count_include_pad=int(a["count_include_pad"]))

    @_bound([F.adaptive_avg_pool2d])
    def adaptive_avg_pool(ctx, node, a):
        if any(s != 1 for s in _pair(a["output_size"])):
            raise _unsupported(node, f"output_size={a['output_size']!r} (only 1 lowers, to GlobalAveragePool)")
        return ctx.op("GlobalAveragePool", [a["input"]])

    @_bound([F.embedding])
    def embedding(ctx, node, a):
        return ctx.op("Gather", [a["weight"], a["input"]], axis=0)


def _shapes() -> None:
    _entry(T._size_method).onnx = lambda ctx, node, x, dim: ctx.op(
        "Gather", [ctx.op("Shape", [x]), ctx.const(np.array(dim, dtype=np.int64))], axis=0)

    @_bound([T.view, engine.reshape])
    def reshape(ctx, node, a):
        if a.get("dtype") is not None:
            raise _unsupported(node, "view(dtype=...) (a reinterpretation of the bytes)")
        return ctx.op("Reshape", [a["input"], ctx.ints(_sizes(a, "shape" if "shape" in a else "size"))])

    @_bound([engine.flatten])
    def flatten(ctx, node, a):
        rank = _rank(node)
        if rank == 0:
            return ctx.op("Reshape", [a["input"], ctx.ints([1])])
        start, end = a["start_dim"] % rank, a["end_dim"] % rank
        if start == 0 and end == rank - 1:
            return ctx.op("Reshape", [a["input"], ctx.ints([-1])])
        if end == rank - 1:
            return ctx.op("Flatten", [a["input"]], axis=start) if start == 1 else ctx.op(
                "Reshape", [a["input"], ctx.op("Concat", [_dims(ctx, a["input"], 0, start), ctx.ints([-1])], axis=0)])
        parts = [_dims(ctx, a["input"], 0, start), ctx.ints([-1]), _dims(ctx, a["input"], end + 1, rank)]
        return ctx.op("Reshape", [a["input"], ctx.op("Concat", parts if start else parts[1:], axis=0)])

    @_bound([engine.transpose])
    def transpose(ctx, node, a):
        perm = list(range(_rank(node)))
        d0, d1 = a["dim0"] % len(perm), a["dim1"] % len(perm)
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return ctx.op("Transpose", [a["input"]], perm=perm)

    def swap_last(ctx, node, x):
        perm = list(range(_rank(node)))
        if len(perm) >= 2:
            perm[-2], perm[-1] = perm[-1], perm[-2]
        return ctx.op("Transpose", [x], perm=perm)

    for method in (T.t, T.mT.fget):
        _entry(method).onnx = swap_last
    _entry(T.T.fget).onnx = lambda ctx, node, x: ctx.op("Transpose", [x], perm=list(range(_rank(node)))[::-1])

    @_bound([engine.permute])
    def permute(ctx, node, a):
        return ctx.op("Transpose", [a["input"]], perm=[d % _rank(node) for d in _sizes(a, "dims")])

    @_bound([engine.cat])
    def cat(ctx, node, a):
        return ctx.op("Concat", list(a["tensors"]), axis=a["dim"])

    @_bound([engine.unsqueeze])
    def unsqueeze(ctx, node, a):
        return ctx.op("Unsqueeze", [a["input"], ctx.ints([a["dim"]])])

    @_bound([engine.mean, engine.sum])
    def reduce(ctx, node, a):
        dims = a["dim"]
        axes = [] if dims is None else _pair(dims, 1)
        op_type = "ReduceMean" if "mean" in node.op_name else "ReduceSum"
        inputs = [a["input"]]
        if op_type == "ReduceSum" and axes:
            inputs.append(ctx.ints(axes))
        attrs = {"axes": axes} if op_type == "ReduceMean" and axes else {}
        return ctx.op(op_type, inputs, keepdims=int(a["keepdim"]), **attrs)


def _norms() -> None:
    @_bound([F.group_norm])
    def group_norm(ctx, node, a):
        x, groups = a["input"], a["num_groups"]
        shape = node.args[0].meta["shape"]
        np_dtype = node.args[0].meta["dtype"].np
        # NOTE: opset 17 has no GroupNormalization: instance-normalize (N, G, -1), then the per-channel affine.
        grouped = ctx.op("Reshape", [x, ctx.ints([0, groups, -1])])
        normed = ctx.op("InstanceNormalization", [grouped, ctx.const(np.ones(groups, np_dtype)),
                                                  ctx.const(np.zeros(groups, np_dtype))], epsilon=a["eps"])
        y = ctx.op("Reshape", [normed, ctx.op("Shape", [x])])
        affine = ctx.ints([shape[1]] + [1] * (len(shape) - 2))
        if a["weight"] is not None:
            y = ctx.op("Mul", [y, ctx.op("Reshape", [a["weight"], affine])])
        if a["bias"] is not None:
            y = ctx.op("Add", [y, ctx.op("Reshape", [a["bias"], affine])])
        return y


def _more_layers() -> None:
    @_bound([engine.where])
    def where(ctx, node, a):
        if a["input"] is None:
            raise _unsupported(node, "where(condition) with one argument (nonzero) has a data-dependent shape")
        like = a["input"] if isinstance(a["input"], str) else a["other"]
        return ctx.op("Where", [a["condition"], ctx.tensor(a["input"], like), ctx.tensor(a["other"], like)])

    @_bound([engine.clamp, F.hardtanh, F.relu6])
    def clip(ctx, node, a):
        x = a["input"]
        low, high = (a.get("min"), a.get("max")) if "min" in a else (a.get("min_val", 0.0), a.get("max_val", 6.0))
        if isinstance(low, str) or isinstance(high, str):  # tensor bounds: Clip takes scalars only
            y = x if low is None else ctx.op("Max", [x, ctx.tensor(low, x)])
            return y if high is None else ctx.op("Min", [y, ctx.tensor(high, x)])
        return ctx.op("Clip", [x, None if low is None else ctx.tensor(low, x), None if high is None
                               else ctx.tensor(high, x)])

    @_bound([F.leaky_relu])
    def leaky_relu(ctx, node, a):
        return ctx.op("LeakyRelu", [a["input"]], alpha=float(a["negative_slope"]))

    @_bound([F.elu])
    def elu(ctx, node, a):
        return ctx.op("Elu", [a["input"]], alpha=float(a["alpha"]))

    @_bound([F.hardsigmoid])
    def hardsigmoid(ctx, node, a):
        return ctx.op("HardSigmoid", [a["input"]], alpha=1 / 6, beta=0.5)

    @_bound([F.softplus])
    def softplus(ctx, node, a):
        x, beta = a["input"], float(a["beta"])
        soft = ctx.op("Div", [ctx.op("Softplus", [ctx.op("Mul", [x, ctx.tensor(beta, x)])]), ctx.tensor(beta, x)])
        # NOTE: above the threshold PyTorch returns x itself (linear region).
        big = ctx.op("Greater", [ctx.op("Mul", [x, ctx.tensor(beta, x)]), ctx.tensor(float(a["threshold"]), x)])
        return ctx.op("Where", [big, x, soft])

    @_bound([F.conv_transpose1d, F.conv_transpose2d])
    def conv_transpose(ctx, node, a):
        n = _rank(node) - 2
        pads = _pair(a["padding"], n)
        return ctx.op("ConvTranspose", [a["input"], a["weight"], a["bias"]], strides=_pair(a["stride"], n),
                      pads=pads + pads, output_padding=_pair(a["output_padding"], n),
                      dilations=_pair(a["dilation"], n), group=a["groups"])

    @_bound([F.max_pool1d, F.avg_pool1d])
    def pool1d(ctx, node, a):
        kernel = _pair(a["kernel_size"], 1)
        stride = _pair(a["stride"] if a["stride"] not in (None, ()) else kernel, 1)
        pads = _pair(a["padding"], 1) * 2
        if "max" in node.op_name:
            if a["return_indices"]:
                raise _unsupported(node, "return_indices=True")
            return ctx.op("MaxPool", [a["input"]], kernel_shape=kernel, strides=stride, pads=pads,
                          dilations=_pair(a["dilation"], 1), ceil_mode=int(a["ceil_mode"]))
        return ctx.op("AveragePool", [a["input"]], kernel_shape=kernel, strides=stride, pads=pads,
                      ceil_mode=int(a["ceil_mode"]), count_include_pad=int(a["count_include_pad"]))

    @_bound([engine.amax])
    def amax(ctx, node, a):
        axes = _pair(a["dim"], 1) if a["dim"] not in (None, ()) else []
        return ctx.op("ReduceMax", [a["input"]], keepdims=int(a["keepdim"]), **({"axes": axes} if axes else {}))
