"""ONNX lowerings of creation, padding, resizing, masking, reduction and elementwise ops the models use.

``arange`` keeps symbolic sizes (``engine.arange(x.size(1))`` becomes ``Range`` over the input's
shape), ``pad`` / ``interpolate`` map to ``Pad`` / ``Resize`` with PyTorch's coordinate rules, and a
boolean mask (``x[mask]``, ``masked_select``, ``x[mask] = v``) lowers to ``NonZero`` + ``GatherND``
/ ``Where``.
"""

from __future__ import annotations

import math

import numpy as np

import engine
from engine.onnx.lowerings import (
    F,
    T,
    _bound,
    _entry,
    _pair,
    _rank,
    _shape_arg,
    _sizes,
    _unsupported,
    floor_divide_ints,
)
from engine.onnx.shape_lowerings import _elem


def _out_rank(node) -> int:
    return len(node.meta["shape"])


def _scalar_of(ctx, v, np_dtype) -> str:
    """A scalar value of ``np_dtype``: a constant, or a symbolic int64 size cast to it."""
    if isinstance(v, str):
        return v if np.dtype(np_dtype) == np.int64 else ctx.op("Cast", [v], to=_elem(engine.dtypes.as_dtype(
            np.dtype(np_dtype).name)))
    return ctx.const(np.array(v, dtype=np_dtype))


def _axes(dims, rank: int) -> list[int]:
    return [d % rank for d in _pair(dims, 1)]


def _filled(ctx, shape: str, value, node) -> str:
    return ctx.op("ConstantOfShape", [shape], value=ctx.numpy_helper.from_array(
        np.array([value], dtype=node.meta["dtype"].np), ctx.fresh("value")))


def install() -> None:
    _creation()
    _padding_and_resizing()
    _masks()
    _reductions()
    _elementwise()
    _shapes()


def _creation() -> None:
    @_bound([engine.arange])
    def arange(ctx, node, a):
        start, end, step = (0, a["start"], a["step"]) if a["end"] is None else (a["start"], a["end"], a["step"])
        np_dtype = node.meta["dtype"].np
        return ctx.op("Range", [_scalar_of(ctx, v, np_dtype) for v in (start, end, step)])

    @_bound([engine.full])
    def full(ctx, node, a):
        if isinstance(a["fill_value"], str):
            raise _unsupported(node, "a fill value computed from tensors")
        return _filled(ctx, ctx.ints(_shape_arg(a["size"])), a["fill_value"], node)

    def like(value):
        def lower(ctx, node, a):
            fill = a["fill_value"] if value is None else value
            return _filled(ctx, ctx.op("Shape", [a["input"]]), fill, node)

        return lower

    _bound([engine.zeros_like])(like(0))
    _bound([engine.ones_like])(like(1))
    _bound([engine.full_like])(like(None))

    def new(value):
        def lower(ctx, node, x, *size, fill_value=None, **kwargs):
            sizes = list(size)
            if value is None:  # new_full(size, fill_value)
                sizes, fill_value = list(sizes[0]), sizes[1] if len(sizes) > 1 else fill_value
            return _filled(ctx, ctx.ints(_shape_arg(sizes)), fill_value if value is None else value, node)

        return lower

    _entry(T.new_zeros).onnx = new(0)
    _entry(T.new_ones).onnx = new(1)
    _entry(T.new_full).onnx = new(None)


def _padding_and_resizing() -> None:
    @_bound([F.pad])
    def pad(ctx, node, a):
        rank = _rank(node)
        amounts = list(a["pad"])
        if len(amounts) % 2 or len(amounts) // 2 > rank:
            raise _unsupported(node, f"pad of length {len(amounts)} for a {rank}-d input")
        begins, ends = [0] * rank, [0] * rank
        for i in range(len(amounts) // 2):  # pairs run from the last dim backwards
            begins[rank - 1 - i], ends[rank - 1 - i] = amounts[2 * i], amounts[2 * i + 1]
        modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}
        if a["mode"] not in modes:
            raise _unsupported(node, f"pad mode {a['mode']!r} (opset 17 has constant, reflect and replicate)")
        inputs = [a["input"], ctx.ints(begins + ends)]
        if a["mode"] == "constant" and a["value"]:
            inputs.append(ctx.const(np.array(a["value"], dtype=node.meta["dtype"].np)))
        return ctx.op("Pad", inputs, mode=modes[a["mode"]])

    @_bound([F.interpolate, F.upsample])
    def interpolate(ctx, node, a):
        mode = a["mode"]
        spatial = _rank(node) - 2
        attrs = {"nearest": {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                 "nearest-exact": {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                                   "nearest_mode": "round_prefer_ceil"}}.get(mode)
        if mode in ("linear", "bilinear", "trilinear"):
            attrs = {"mode": "linear", "coordinate_transformation_mode":
                     "align_corners" if a["align_corners"] else "pytorch_half_pixel"}
        if attrs is None:
            raise _unsupported(node, f"interpolate mode {mode!r} (nearest, nearest-exact and linear modes lower)")
        if a["size"] is not None or a.get("recompute_scale_factor"):
            sizes = list(node.meta["shape"][2:]) if a["size"] is None else _pair(a["size"], spatial)
            from engine.onnx.lowerings import _dims

            full = ctx.op("Concat", [_dims(ctx, a["input"], 0, 2), ctx.ints(sizes)], axis=0)
            return ctx.op("Resize", [a["input"], "", "", full], **attrs)
        scales = [1.0, 1.0] + [float(s) for s in _pair(a["scale_factor"], spatial)]
        return ctx.op("Resize", [a["input"], "", ctx.const(np.array(scales, np.float32))], **attrs)


def _masks() -> None:
    @_bound([engine.masked_select])
    def masked_select(ctx, node, a):
        x, mask = a["input"], a["mask"]
        shape = ctx.op("Shape", [ctx.op("Add", [ctx.op("Cast", [mask], to=_elem(node.meta["dtype"])), x])])
        flat = [ctx.op("Reshape", [ctx.op("Expand", [t, shape]), ctx.ints([-1])]) for t in (x, mask)]
        return ctx.op("Compress", flat, axis=0)

    def setitem(ctx, node, x, index, value):
        mask = index[0] if isinstance(index, tuple) and len(index) == 1 else index
        if not (isinstance(mask, str) and ctx.dtypes.get(mask) is not None and ctx.dtypes[mask].name == "bool"):
            raise _unsupported(node, "item assignment other than x[bool_mask] = value")
        return ctx.op("Where", [mask, ctx.tensor(value, x), x])

    _entry(T.__setitem__).onnx = setitem
    masked_fill = _entry(engine.masked_fill).onnx
    _entry(T.masked_fill_).onnx = masked_fill
    _entry(T.where).onnx = lambda ctx, node, x, condition, other: ctx.op(
        "Where", [condition, x, ctx.tensor(other, x)])


def _reductions() -> None:
    def reducer(op_type: str):
        def lower(ctx, node, a):
            dims = a.get("dim")
            rank = _rank(node)
            axes = [] if dims is None or dims == () else _axes(dims, rank)
            # NOTE: opset 17 gives axes as an attribute to every reduction but ReduceSum
            return ctx.op(op_type, [a["input"]], keepdims=int(a["keepdim"]), **({"axes": axes} if axes else {}))

        return lower

    _bound([engine.amin])(reducer("ReduceMin"))
    _bound([engine.prod])(reducer("ReduceProd"))
    _bound([engine.logsumexp])(reducer("ReduceLogSumExp"))

    @_bound([engine.all, engine.any])
    def all_any(ctx, node, a):
        op_type = "ReduceMin" if "all" in node.op_name else "ReduceMax"
        as_int = ctx.op("Cast", [a["input"]], to=_elem(engine.int32))
        axes = [] if a["dim"] is None else _axes(a["dim"], _rank(node))
        out = ctx.op(op_type, [as_int], keepdims=int(a["keepdim"]), **({"axes": axes} if axes else {}))
        return ctx.op("Cast", [ctx.op("Greater", [out, ctx.const(np.array(0, np.int32))])], to=_elem(engine.bool))

    @_bound([engine.argmax, engine.argmin])
    def arg_extreme(ctx, node, a):
        op_type = "ArgMax" if "argmax" in node.op_name else "ArgMin"
        x = a["input"]
        if a["dim"] is None:
            x = ctx.op("Reshape", [x, ctx.ints([-1])])
            return ctx.op(op_type, [x], axis=0, keepdims=0)
        return ctx.op(op_type, [x], axis=a["dim"] % _rank(node), keepdims=int(a["keepdim"]))

    @_bound([engine.max, engine.min])
    def extreme(ctx, node, a):
        is_max = node.op_name.endswith("max")
        other = a["other"] if a["other"] is not None else a["dim"] if isinstance(a["dim"], str) else None
        if other is not None:  # max(a, b): the elementwise form
            return ctx.op("Max" if is_max else "Min", [a["input"], other])
        reduce = "ReduceMax" if is_max else "ReduceMin"
        if a["dim"] is None:
            return ctx.op(reduce, [a["input"]], keepdims=0)
        axis = a["dim"] % _rank(node)
        values = ctx.op(reduce, [a["input"]], axes=[axis], keepdims=int(a["keepdim"]))
        indices = ctx.op("ArgMax" if is_max else "ArgMin", [a["input"]], axis=axis, keepdims=int(a["keepdim"]))
        return values, indices

    @_bound([engine.var, engine.std])
    def var(ctx, node, a):
        x, rank = a["input"], _rank(node)
        axes = list(range(rank)) if a["dim"] is None else _axes(a["dim"], rank)
        shape = node.args[0].meta["shape"]
        count = int(np.prod([shape[d] for d in axes]))
        correction = a["correction"] if a["correction"] is not None else (0 if a["unbiased"] is False else 1)
        mean = ctx.op("ReduceMean", [x], axes=axes, keepdims=1)
        diff = ctx.op("Sub", [x, mean])
        total = ctx.op("ReduceSum", [ctx.op("Mul", [diff, diff]), ctx.ints(axes)], keepdims=int(a["keepdim"]))
        out = ctx.op("Div", [total, ctx.tensor(float(max(count - correction, 0)), x)])
        return ctx.op("Sqrt", [out]) if "std" in node.op_name else out

    @_bound([engine.cumsum])
    def cumsum(ctx, node, a):
        return ctx.op("CumSum", [a["input"], ctx.const(np.array(a["dim"] % max(_rank(node), 1), np.int64))])


def _elementwise() -> None:
    unary = {engine.log1p: lambda ctx, x: ctx.op("Log", [ctx.op("Add", [x, ctx.tensor(1.0, x)])]),
             engine.expm1: lambda ctx, x: ctx.op("Sub", [ctx.op("Exp", [x]), ctx.tensor(1.0, x)]),
             engine.log2: lambda ctx, x: ctx.op("Div", [ctx.op("Log", [x]), ctx.tensor(float(np.log(2.0)), x)]),
             engine.log10: lambda ctx, x: ctx.op("Div", [ctx.op("Log", [x]), ctx.tensor(float(np.log(10.0)), x)]),
             engine.tan: lambda ctx, x: ctx.op("Tan", [x]), engine.atan: lambda ctx, x: ctx.op("Atan", [x]),
             engine.trunc: lambda ctx, x: ctx.op("Mul", [ctx.op("Floor", [ctx.op("Abs", [x])]), ctx.op("Sign", [x])]),
             engine.isinf: lambda ctx, x: ctx.op("IsInf", [x]),
             engine.asin: lambda ctx, x: ctx.op("Asin", [x]), engine.arccos: lambda ctx, x: ctx.op("Acos", [x]),
             engine.sinh: lambda ctx, x: ctx.op("Sinh", [x]), engine.cosh: lambda ctx, x: ctx.op("Cosh", [x]),
             engine.asinh: lambda ctx, x: ctx.op("Asinh", [x]), engine.arccosh: lambda ctx, x: ctx.op("Acosh", [x]),
             engine.atanh: lambda ctx, x: ctx.op("Atanh", [x]), T.detach: lambda ctx, x: ctx.op("Identity", [x]),
             T.erfc: lambda ctx, x: ctx.op("Sub", [ctx.tensor(1.0, x), ctx.op("Erf", [x])]),
             F.logsigmoid: lambda ctx, x: ctx.op("Log", [ctx.op("Sigmoid", [x])]),
             F.softsign: lambda ctx, x: ctx.op("Softsign", [x]), F.selu: lambda ctx, x: ctx.op("Selu", [x]),
             F.hardswish: lambda ctx, x: ctx.op("HardSwish", [x]),
             F.mish: lambda ctx, x: ctx.op("Mul", [x, ctx.op("Tanh", [ctx.op("Softplus", [x])])]),
             F.tanhshrink: lambda ctx, x: ctx.op("Sub", [x, ctx.op("Tanh", [x])])}
    for fn, build in unary.items():
        _entry(fn).onnx = lambda ctx, node, x, *rest, _build=build, **kw: _build(ctx, x)

    @_bound([engine.signbit])
    def signbit(ctx, node, a):  # 1 / -0.0 is -inf: the sign of a zero shows in its reciprocal
        x = a["input"]
        zero = ctx.tensor(0.0, x)
        return ctx.op("Or", [ctx.op("Less", [x, zero]), ctx.op("Less", [ctx.op("Reciprocal", [x]), zero])])

    @_bound([engine.atan2])
    def atan2(ctx, node, a):  # atan(y / x), moved by pi into the left half-plane
        y, x = a["input"], ctx.tensor(a["other"], a["input"])
        zero = ctx.tensor(0.0, y)
        half_turn = ctx.op("Where", [ctx.op("GreaterOrEqual", [y, zero]), ctx.tensor(math.pi, y),
                                     ctx.tensor(-math.pi, y)])
        shift = ctx.op("Where", [ctx.op("Less", [x, zero]), half_turn, zero])
        return ctx.op("Add", [ctx.op("Atan", [ctx.op("Div", [y, x])]), shift])

    @_bound([engine.heaviside])
    def heaviside(ctx, node, a):
        x, values = a["input"], ctx.tensor(a["values"], a["input"])
        step = ctx.op("Where", [ctx.op("Greater", [x, ctx.tensor(0.0, x)]), ctx.tensor(1.0, x), ctx.tensor(0.0, x)])
        return ctx.op("Where", [ctx.op("Equal", [x, ctx.tensor(0.0, x)]), values, step])

    @_bound([T.xlogy])
    def xlogy(ctx, node, a):  # 0 where x == 0 (even for y == 0), NaN where y is NaN
        x, y = a["input"], ctx.tensor(a["other"], a["input"])
        product = ctx.op("Where", [ctx.op("Equal", [x, ctx.tensor(0.0, x)]), ctx.tensor(0.0, x),
                                   ctx.op("Mul", [x, ctx.op("Log", [y])])])
        return ctx.op("Where", [ctx.op("IsNaN", [y]), y, product])

    @_bound([engine.conj])
    def conj(ctx, node, a):
        if node.meta["dtype"].is_complex:
            raise _unsupported(node, "complex tensors (ONNX has no complex element type)")
        return ctx.op("Identity", [a["input"]])

    @_bound([engine.trace])
    def trace(ctx, node, a):
        x = a["input"]
        return ctx.op("ReduceSum", [ctx.op("Mul", [x, ctx.op("EyeLike", [x])])], keepdims=0)

    @_bound([engine.logcumsumexp])
    def logcumsumexp(ctx, node, a):  # NOTE: shifted by the max along dim; terms ~88 below it underflow to 0
        x, axis = a["input"], a["dim"] % max(_rank(node), 1)
        peak = ctx.op("ReduceMax", [x], axes=[axis], keepdims=1)
        total = ctx.op("CumSum", [ctx.op("Exp", [ctx.op("Sub", [x, peak])]), ctx.const(np.array(axis, np.int64))])
        return ctx.op("Add", [ctx.op("Log", [total]), peak])

    @_bound([engine.round])
    def round_(ctx, node, a):
        if a["decimals"]:
            raise _unsupported(node, "round(decimals=...)")
        return ctx.op("Round", [a["input"]])

    comparisons = {engine.ge: "GreaterOrEqual", engine.le: "LessOrEqual", engine.logical_and: "And",
                   engine.logical_or: "Or", engine.logical_xor: "Xor"}
    for fn, op_type in comparisons.items():
        _entry(fn).onnx = lambda ctx, node, x, y, _op=op_type: ctx.op(_op, [ctx.tensor(x, y if isinstance(
            y, str) else None), ctx.tensor(y, x if isinstance(x, str) else None)])
    _entry(engine.ne).onnx = lambda ctx, node, x, y: ctx.op("Not", [ctx.op("Equal", [x, ctx.tensor(y, x)])])

    @_bound([engine.remainder, engine.floor_divide])
    def floor_ops(ctx, node, a):
        x = a["input"]
        y = ctx.tensor(a["other"], x)
        if node.meta["dtype"].is_floating_point:
            quotient = ctx.op("Floor", [ctx.op("Div", [x, y])])
        else:
            quotient = floor_divide_ints(ctx, x, y, node.meta["dtype"])
        if "floor_divide" in node.op_name:
            return quotient
        return ctx.op("Sub", [x, ctx.op("Mul", [quotient, y])])

    @_bound([F.glu])
    def glu(ctx, node, a):
        first, second = ctx.op("Split", [a["input"]], n_out=2, axis=a["dim"])
        return ctx.op("Mul", [first, ctx.op("Sigmoid", [second])])

    @_bound([F.celu])
    def celu(ctx, node, a):
        return ctx.op("Celu", [a["input"]], alpha=float(a["alpha"]))

    @_bound([F.threshold])
    def threshold(ctx, node, a):
        x = a["input"]
        return ctx.op("Where", [ctx.op("Greater", [x, ctx.tensor(float(a["threshold"]), x)]), x,
                                ctx.tensor(float(a["value"]), x)])

    @_bound([F.prelu])
    def prelu(ctx, node, a):
        rank, channels = _rank(node), node.args[1].meta["shape"]
        slope = a["weight"]
        if rank >= 2 and channels and channels[0] > 1:
            slope = ctx.op("Reshape", [slope, ctx.ints([channels[0]] + [1] * (rank - 2))])
        return ctx.op("PRelu", [a["input"], slope])

    @_bound([F.normalize])
    def normalize(ctx, node, a):
        x = a["input"]
        if a["p"] not in (1, 2, 1.0, 2.0):
            raise _unsupported(node, f"normalize with p={a['p']}")
        axis = a["dim"] % _rank(node)
        norm = ctx.op("ReduceL2" if a["p"] == 2 else "ReduceL1", [x], axes=[axis], keepdims=1)
        return ctx.op("Div", [x, ctx.op("Max", [norm, ctx.tensor(float(a["eps"]), x)])])

    @_bound([F.softmin])
    def softmin(ctx, node, a):
        if a["dim"] is None:
            raise _unsupported(node, "pass dim= explicitly")
        return ctx.op("Softmax", [ctx.op("Neg", [a["input"]])], axis=a["dim"])

    @_bound([F.one_hot])
    def one_hot(ctx, node, a):
        depth = node.meta["shape"][-1]
        values = ctx.const(np.array([0, 1], dtype=np.int64))
        return ctx.op("OneHot", [a["tensor"], ctx.const(np.array(depth, np.int64)), values], axis=-1)


def _shapes() -> None:
    @_bound([engine.squeeze])
    def squeeze(ctx, node, a):
        shape = node.args[0].meta["shape"]
        rank = len(shape)
        dims = range(rank) if a["dim"] is None else _axes(a["dim"], max(rank, 1))
        axes = [d for d in dims if rank and shape[d] == 1]
        return ctx.op("Squeeze", [a["input"], ctx.ints(axes)]) if axes else ctx.op("Identity", [a["input"]])

    def expand(ctx, node, x, *sizes, size=None):
        sizes = _shape_arg(sizes if size is None else (size,))
        rank, in_shape = len(sizes), node.args[0].meta["shape"]
        offset = rank - len(in_shape)
        # NOTE: -1 keeps the input's size; Expand broadcasts a 1 against it, so 1 stands for "keep".
        target = [1 if isinstance(s, int) and s == -1 and i >= offset else s for i, s in enumerate(sizes)]
        return ctx.op("Expand", [x, ctx.ints(target)])

    _entry(T.expand).onnx = expand
    _entry(T.expand_as).onnx = lambda ctx, node, x, other: ctx.op("Expand", [x, ctx.op("Shape", [other])])
    _entry(engine.broadcast_to).onnx = lambda ctx, node, x, shape: expand(ctx, node, x, *_shape_arg([shape]))
    for method in (T.view_as, T.reshape_as):
        _entry(method).onnx = lambda ctx, node, x, other: ctx.op("Reshape", [x, ctx.op("Shape", [other])])
    _entry(T.type_as).onnx = lambda ctx, node, x, other: ctx.op("Cast", [x], to=_elem(node.meta["dtype"]))

    def repeat(ctx, node, x, *repeats, **kwargs):
        repeats = _shape_arg(repeats if kwargs.get("repeats") is None else (kwargs["repeats"],))
        extra = len(repeats) - _rank(node)
        if extra > 0:
            x = ctx.op("Reshape", [x, ctx.ints([1] * extra + list(node.args[0].meta["shape"]))])
        return ctx.op("Tile", [x, ctx.ints(repeats)])

    _entry(T.repeat).onnx = repeat

    @_bound([engine.tile])
    def tile(ctx, node, a):
        dims = list(_pair(a["dims"], 1))
        rank = _rank(node)
        dims = [1] * (rank - len(dims)) + dims
        return repeat(ctx, node, a["input"], *dims)

    @_bound([engine.select])
    def select(ctx, node, a):
        return ctx.op("Gather", [a["input"], ctx.scalar_int(a["index"])], axis=a["dim"] % _rank(node))

    @_bound([engine.narrow])
    def narrow(ctx, node, a):
        start = a["start"]
        stop = start + a["length"] if isinstance(start, int) and isinstance(a["length"], int) else ctx.op(
            "Add", [ctx.scalar_int(start), ctx.scalar_int(a["length"])])
        return ctx.op("Slice", [a["input"], ctx.ints([start]), ctx.ints([stop]), ctx.ints([a["dim"] % _rank(node)])])

    @_bound([engine.gather])
    def gather(ctx, node, a):
        return ctx.op("GatherElements", [a["input"], a["index"]], axis=a["dim"] % _rank(node))

    @_bound([engine.index_select])
    def index_select(ctx, node, a):
        return ctx.op("Gather", [a["input"], a["index"]], axis=a["dim"] % _rank(node))

    @_bound([engine.flip])
    def flip(ctx, node, a):
        axes = _axes(_sizes(a, "dims"), _rank(node))
        n = len(axes)
        return ctx.op("Slice", [a["input"], ctx.ints([-1] * n), ctx.ints([-(2 ** 63)] * n), ctx.ints(axes),
                                ctx.ints([-1] * n)])

    @_bound([engine.unflatten])
    def unflatten(ctx, node, a):
        from engine.onnx.lowerings import _dims

        rank = _rank(node)
        dim = a["dim"] % rank
        parts = [ctx.ints(list(a["sizes"]))]
        if dim:
            parts.insert(0, _dims(ctx, a["input"], 0, dim))
        if dim + 1 < rank:
            parts.append(_dims(ctx, a["input"], dim + 1, rank))
        return ctx.op("Reshape", [a["input"], ctx.op("Concat", parts, axis=0) if len(parts) > 1 else parts[0]])

    @_bound([engine.movedim])
    def movedim(ctx, node, a):
        rank = _rank(node)
        source, dest = _axes(a["source"], rank), _axes(a["destination"], rank)
        order = [d for d in range(rank) if d not in source]
        for d, s in sorted(zip(dest, source, strict=True)):
            order.insert(d, s)
        return ctx.op("Transpose", [a["input"]], perm=order)

    @_bound([F.pixel_shuffle])
    def pixel_shuffle(ctx, node, a):
        return ctx.op("DepthToSpace", [a["input"]], blocksize=a["upscale_factor"], mode="CRD")
