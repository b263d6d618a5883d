"""ONNX lowerings of products (mm, bmm, mv, outer, addmm, einsum), norms, sorting, rolling and scattering.

Also the ``engine.*`` spellings of activations whose ``nn.functional`` forms lower elsewhere
(``engine.gelu`` is ``F.gelu``'s math), and the fused elementwise helpers (lerp, addcmul, addcdiv).
"""

from __future__ import annotations

import numpy as np

import engine
from engine.onnx.lowerings import F, T, _bound, _entry, _pair, _rank, _unsupported


def install() -> None:
    _aliases()
    _products()
    _elementwise()
    _norms()
    _sorting()
    _indexing()


def _aliases() -> None:
    # NOTE: same arguments by name as the nn.functional forms, whose lowerings read them by name
    for alias, functional in ((engine.leaky_relu, F.leaky_relu), (engine.elu, F.elu), (engine.gelu, F.gelu),
                              (engine.silu, F.silu), (engine.softplus, F.softplus)):
        _entry(alias).onnx = _rebound(alias, _entry(functional).onnx)
    _entry(T.__rpow__).onnx = lambda ctx, node, a, b: ctx.op("Pow", [ctx.tensor(b, a), a])


def _rebound(alias, lowering):
    import inspect

    signature = inspect.signature(_entry(alias).fn)

    def lower(ctx, node, *args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return lowering(ctx, node, **bound.arguments)

    return lower


def _products() -> None:
    for fn in (engine.mm, engine.bmm, engine.mv, engine.inner):
        _entry(fn).onnx = lambda ctx, node, a, b: ctx.op("MatMul", [a, b])

    @_bound([engine.outer])
    def outer(ctx, node, a):
        return ctx.op("Mul", [ctx.op("Unsqueeze", [a["input"], ctx.ints([1])]),
                              ctx.op("Unsqueeze", [a["vec2"], ctx.ints([0])])])

    @_bound([engine.addmm])
    def addmm(ctx, node, a):
        x = a["input"]
        return ctx.op("Gemm", [a["mat1"], a["mat2"], x], alpha=float(a["alpha"]), beta=float(a["beta"]))

    def einsum(ctx, node, equation, *operands):
        if len(operands) == 1 and isinstance(operands[0], tuple | list):
            operands = tuple(operands[0])
        return ctx.op("Einsum", list(operands), equation=equation.replace(" ", ""))

    _entry(engine.einsum).onnx = einsum


def _elementwise() -> None:
    @_bound([engine.lerp])
    def lerp(ctx, node, a):
        x = a["input"]
        return ctx.op("Add", [x, ctx.op("Mul", [ctx.tensor(a["weight"], x), ctx.op("Sub", [a["end"], x])])])

    @_bound([engine.addcmul, engine.addcdiv])
    def addc(ctx, node, a):
        x = a["input"]
        op_type = "Mul" if "addcmul" in node.op_name else "Div"
        product = ctx.op(op_type, [a["tensor1"], a["tensor2"]])
        return ctx.op("Add", [x, ctx.op("Mul", [product, ctx.tensor(float(a["value"]), x)])])

    @_bound([engine.isclose])
    def isclose(ctx, node, a):
        x, y = a["input"], a["other"]
        y = ctx.tensor(y, x)
        bound = ctx.op("Add", [ctx.tensor(float(a["atol"]), x), ctx.op("Mul", [ctx.tensor(float(a["rtol"]), x),
                                                                               ctx.op("Abs", [y])])])
        close = ctx.op("LessOrEqual", [ctx.op("Abs", [ctx.op("Sub", [x, y])]), bound])
        if a["equal_nan"]:
            close = ctx.op("Or", [close, ctx.op("And", [ctx.op("IsNaN", [x]), ctx.op("IsNaN", [y])])])
        return close

    @_bound([engine.count_nonzero])
    def count_nonzero(ctx, node, a):
        nonzero = ctx.op("Cast", [ctx.op("Not", [ctx.op("Equal", [a["input"], ctx.tensor(0, a["input"])])])], to=7)
        dims = a["dim"]
        if dims is None:
            return ctx.op("ReduceSum", [nonzero], keepdims=0)
        axes = [d % _rank(node) for d in _pair(dims, 1)]
        return ctx.op("ReduceSum", [nonzero, ctx.ints(axes)], keepdims=0)


def _norms() -> None:
    @_bound([engine.norm])
    def norm(ctx, node, a):
        x, p = a["input"], a["p"]
        if a["dtype"] is not None:
            raise _unsupported(node, "norm(dtype=...)")
        rank = _rank(node)
        axes = list(range(rank)) if a["dim"] is None else [d % rank for d in _pair(a["dim"], 1)]
        keep = int(a["keepdim"])
        if p in ("fro", 2, 2.0):
            return ctx.op("ReduceL2", [x], axes=axes, keepdims=keep)
        if p in (1, 1.0):
            return ctx.op("ReduceL1", [x], axes=axes, keepdims=keep)
        if p == float("inf"):
            return ctx.op("ReduceMax", [ctx.op("Abs", [x])], axes=axes, keepdims=keep)
        if p == float("-inf"):
            return ctx.op("ReduceMin", [ctx.op("Abs", [x])], axes=axes, keepdims=keep)
        if isinstance(p, int | float) and p > 0:
            total = ctx.op("ReduceSum", [ctx.op("Pow", [ctx.op("Abs", [x]), ctx.tensor(float(p), x)]),
                                         ctx.ints(axes)], keepdims=keep)
            return ctx.op("Pow", [total, ctx.tensor(1.0 / float(p), x)])
        raise _unsupported(node, f"norm with p={p!r}")


def _top(ctx, node, x: str, k, axis: int, largest: bool):
    k_value = ctx.op("Reshape", [ctx.scalar_int(k), ctx.ints([1])])
    return ctx.op("TopK", [x, k_value], n_out=2, axis=axis, largest=int(largest), sorted=1)


def _sorting() -> None:
    @_bound([engine.topk])
    def topk(ctx, node, a):
        return _top(ctx, node, a["input"], a["k"], a["dim"] % _rank(node), a["largest"])

    @_bound([engine.sort, engine.argsort])
    def sort(ctx, node, a):
        if a["stable"]:
            raise _unsupported(node, "stable=True (ONNX TopK does not promise a stable order of ties)")
        axis = a["dim"] % _rank(node)
        length = ctx.op("Gather", [ctx.op("Shape", [a["input"]]), ctx.const(np.array(axis, np.int64))], axis=0)
        values, indices = _top(ctx, node, a["input"], length, axis, a["descending"])
        return indices if "argsort" in node.op_name else (values, indices)

    @_bound([engine.roll])
    def roll(ctx, node, a):
        x = a["input"]
        shifts, dims = list(_pair(a["shifts"], 1)), a["dims"]
        if dims is None:  # a flat roll, then the original shape back
            flat = ctx.op("Reshape", [x, ctx.ints([-1])])
            return ctx.op("Reshape", [_roll_axis(ctx, node, flat, shifts[0], 0, int(np.prod(node.args[0].meta[
                "shape"]))), ctx.op("Shape", [x])])
        shape = node.args[0].meta["shape"]
        for shift, dim in zip(shifts, _pair(dims, 1), strict=True):
            axis = dim % _rank(node)
            x = _roll_axis(ctx, node, x, shift, axis, shape[axis])
        return x


def _roll_axis(ctx, node, x: str, shift, axis: int, size: int) -> str:
    if not isinstance(shift, int):
        raise _unsupported(node, "a roll shift computed from tensors")
    shift = shift % size if size else 0
    if not shift:
        return x
    head = ctx.op("Slice", [x, ctx.ints([size - shift]), ctx.ints([size]), ctx.ints([axis])])
    tail = ctx.op("Slice", [x, ctx.ints([0]), ctx.ints([size - shift]), ctx.ints([axis])])
    return ctx.op("Concat", [head, tail], axis=axis)


def _indexing() -> None:
    @_bound([engine.take_along_dim])
    def take_along_dim(ctx, node, a):
        if a["dim"] is None:
            flat = ctx.op("Reshape", [a["input"], ctx.ints([-1])])
            return ctx.op("GatherElements", [flat, ctx.op("Reshape", [a["indices"], ctx.ints([-1])])], axis=0)
        return ctx.op("GatherElements", [a["input"], a["indices"]], axis=a["dim"] % _rank(node))

    @_bound([engine.scatter, engine.scatter_add])
    def scatter(ctx, node, a):
        x = a["input"]
        adds = "scatter_add" in node.op_name
        if not adds and a.get("reduce") is not None:
            raise _unsupported(node, f"scatter(reduce={a['reduce']!r})")
        src = a["src"]
        if src is None or not isinstance(src, str):
            value = a.get("value") if src is None else src
            src = ctx.op("ConstantOfShape", [ctx.op("Shape", [a["index"]])], value=ctx.numpy_helper.from_array(
                np.array([value], dtype=node.meta["dtype"].np), ctx.fresh("value")))
        else:  # src may be larger than index: ScatterElements wants them the same shape
            src = ctx.op("Slice", [src, ctx.ints([0] * _rank(node)), ctx.op("Shape", [a["index"]]),
                                   ctx.ints(list(range(_rank(node))))])
        attrs = {"reduction": "add"} if adds else {}
        return ctx.op("ScatterElements", [x, a["index"], src], axis=a["dim"] % _rank(node), **attrs)
