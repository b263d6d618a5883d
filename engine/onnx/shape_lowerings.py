"""ONNX lowerings of the shape ops: split/chunk/unbind/stack, filled tensors, casts, masks, attention, indexing."""

from __future__ import annotations

import math

import numpy as np

import engine
from engine.onnx.lowerings import F, T, _bound, _entry, _rank, _shape_arg, _unsupported


def _elem(dtype) -> int:
    from engine.onnx._context import ELEM_TYPES

    return ELEM_TYPES[dtype.name]


def _pieces(ctx, node, x, sizes: list, dim: int, squeeze: bool = False):
    outs = ctx.op("Split", [x, ctx.ints(sizes)], n_out=len(sizes), axis=dim)
    outs = (outs,) if isinstance(outs, str) else outs
    if squeeze:
        outs = tuple(ctx.op("Squeeze", [o, ctx.ints([dim])]) for o in outs)
    return outs


def install() -> None:
    @_bound([engine.split])
    def split(ctx, node, a):
        dim = a["dim"] % _rank(node)
        total = node.args[0].meta["shape"][dim]
        step = _static(node, 1, a["split_size_or_sections"])
        sizes = list(step) if isinstance(step, tuple | list) else [min(step, total - i) for i in range(0, total, step)]
        return _pieces(ctx, node, a["tensor"], sizes, dim)

    @_bound([engine.chunk])
    def chunk(ctx, node, a):
        dim = a["dim"] % _rank(node)
        total = node.args[0].meta["shape"][dim]
        step = -(-total // a["chunks"])
        return _pieces(ctx, node, a["input"], [min(step, total - i) for i in range(0, total, step)], dim)

    @_bound([engine.unbind])
    def unbind(ctx, node, a):
        dim = a["dim"] % _rank(node)
        return _pieces(ctx, node, a["input"], [1] * node.args[0].meta["shape"][dim], dim, squeeze=True)

    @_bound([engine.stack])
    def stack(ctx, node, a):
        rank = len(node.args[0][0].meta["shape"]) + 1
        dim = a["dim"] % rank
        return ctx.op("Concat", [ctx.op("Unsqueeze", [t, ctx.ints([dim])]) for t in a["tensors"]], axis=dim)

    @_bound([engine.zeros, engine.ones])
    def filled(ctx, node, a):
        value = np.array([0 if "zeros" in node.op_name else 1], dtype=node.meta["dtype"].np)
        size = a["size"] if a.get("size") is not None else a.get("args", ())  # zeros(2, 3) or zeros(size=(2, 3))
        return ctx.op("ConstantOfShape", [ctx.ints(_shape_arg(tuple(size)))],
                      value=ctx.numpy_helper.from_array(value, ctx.fresh("value")))

    @_bound([engine.tril, engine.triu])
    def trilu(ctx, node, a):
        return ctx.op("Trilu", [a["input"], ctx.scalar_int(a["diagonal"])], upper=int("triu" in node.op_name))

    for method in (T.bool, T.float, T.double, T.long, T.int, T.half):
        _entry(method).onnx = lambda ctx, node, x: ctx.op("Cast", [x], to=_elem(node.meta["dtype"]))

    def to(ctx, node, x, *args, **kwargs):
        same = node.meta["dtype"] is node.args[0].meta["dtype"]
        return ctx.op("Identity", [x]) if same else ctx.op("Cast", [x], to=_elem(node.meta["dtype"]))

    _entry(T.to).onnx = to

    @_bound([engine.masked_fill])
    def masked_fill(ctx, node, a):
        x = a["input"]
        return ctx.op("Where", [a["mask"], ctx.tensor(a["value"], x), x])

    @_bound([F.scaled_dot_product_attention])
    def attention(ctx, node, a):
        if a["dropout_p"]:
            raise _unsupported(node, "dropout_p > 0 (export with dropout_p=0.0 in eval mode)")
        q, k, v = a["query"], a["key"], a["value"]
        rank = _rank(node)
        perm = list(range(rank))
        perm[-2], perm[-1] = perm[-1], perm[-2]
        scale = a["scale"] if a["scale"] is not None else 1 / math.sqrt(node.args[0].meta["shape"][-1])
        scores = ctx.op("Mul", [ctx.op("MatMul", [q, ctx.op("Transpose", [k], perm=perm)]), ctx.tensor(scale, q)])
        mask = a["attn_mask"]
        if a["is_causal"]:
            length = [ctx.op("Gather", [ctx.op("Shape", [t]), ctx.const(np.array(-2, np.int64))], axis=0)
                      for t in (q, k)]
            ones = ctx.op("ConstantOfShape", [ctx.ints(length)],
                          value=ctx.numpy_helper.from_array(np.array([True]), ctx.fresh("value")))
            mask = ctx.op("Trilu", [ones], upper=0)
        if mask is not None and _is_bool(node, mask, a):
            scores = ctx.op("Where", [mask, scores, ctx.tensor(float("-inf"), q)])
        elif mask is not None:
            scores = ctx.op("Add", [scores, mask])
        return ctx.op("MatMul", [ctx.op("Softmax", [scores], axis=-1), v])

    _entry(T.__getitem__).onnx = _getitem


def _is_bool(node, mask, a) -> bool:
    if a["is_causal"]:
        return True
    source = node.args[3] if len(node.args) > 3 else node.kwargs.get("attn_mask")
    return source.meta["dtype"].name == "bool"


def _getitem(ctx, node, x, index):
    items = index if isinstance(index, tuple) else (index,)
    raw = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
    rank = len(node.args[0].meta["shape"])
    tensors = [i for i in items if isinstance(i, str)]
    if len(tensors) > 1:
        raise _unsupported(node, "indexing with more than one tensor (advanced indexing that broadcasts indices)")
    masks = [i for i in tensors if _is_bool_index(node, i, ctx)]
    explicit = sum(len(r.meta["shape"]) if isinstance(i, str) and i in masks else 1
                   for i, r in zip(items, raw, strict=True) if i is not None and i is not Ellipsis)
    axis = 0
    for item, source in zip(items, raw, strict=True):
        if item is Ellipsis:
            axis += rank - explicit
        elif item is None:
            x = ctx.op("Unsqueeze", [x, ctx.ints([axis])])
            axis += 1
        elif isinstance(item, slice):
            if item != slice(None):
                start = 0 if item.start is None else item.start
                stop = 2**63 - 1 if item.stop is None else item.stop
                x = ctx.op("Slice", [x, ctx.ints([start]), ctx.ints([stop]), ctx.ints([axis]),
                                     ctx.ints([1 if item.step is None else item.step])])
            axis += 1
        elif item in masks:
            if axis != 0:
                raise _unsupported(node, "a boolean mask after other indices (x[..., mask])")
            # NOTE: x[mask] = GatherND(x, NonZero(mask)^T); the result's length depends on the data.
            x = ctx.op("GatherND", [x, ctx.op("Transpose", [ctx.op("NonZero", [item])], perm=[1, 0])])
            axis += 1
        elif isinstance(item, int) or isinstance(item, str):
            x = ctx.op("Gather", [x, ctx.scalar_int(item)], axis=axis)
            axis += len(source.meta.get("shape", ())) if isinstance(item, str) else 0
        else:
            raise _unsupported(node, f"indexing with {type(item).__name__} (ints, slices, None and ... lower)")
    return x


def _is_bool_index(node, name: str, ctx) -> bool:
    dtype = ctx.dtypes.get(name)
    return dtype is not None and dtype.name == "bool"


def _static(node, position: int, value):
    """The trace-time value of a size argument that the ONNX graph keeps fixed (a split size)."""
    from engine.fx.graph import Node

    source = node.args[position] if position < len(node.args) else None
    return source.meta["value"] if isinstance(value, str) and isinstance(source, Node) else value
