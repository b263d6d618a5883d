"""Lower an fx graph to a ``Program`` over arrays: one lowering per op name, a fallback for the rest.

Composite ops are decomposed into pointwise ops and reductions so that the scheduler can fuse them
(``softmax`` = amax, exp, sum, div; ``layer_norm`` = two row reductions and pointwise math;
``cross_entropy`` = log_softmax and an NLL gather; ``linear`` = a GEMM and a bias add; ``dropout`` =
the engine generator's uniforms, then a fused keep-and-scale). An op without a lowering, or whose
arguments a lowering does not cover, runs its eager kernel on tensors wrapping the arrays.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from engine._inductor import kernels
from engine._inductor.ir import Program, Unsupported, Value, broadcast_shapes, map_values, view_shape
from engine.fx import registry
from engine.fx.graph import map_arg, target_name

LOWERINGS: dict = {}


def lower(*names):
    def deco(fn):
        for name in names:
            LOWERINGS[name] = fn
        return fn

    return deco


def _is_scalar(a) -> bool:
    return isinstance(a, int | float | bool | np.number | np.bool_) and not isinstance(a, Value)


class Lowerer:
    """Builds a Program from a GraphModule, given each node's (shape, NumPy dtype) at these inputs."""

    def __init__(self, gm, meta: dict, device=None):
        self.gm = gm
        self.meta = meta  # node -> (shape, np dtype)
        self.cuda = device is not None and device.type == "cuda"  # CUDA programs use device-neutral externs only
        self.prog = Program()
        self.node = None
        self.fallbacks: list[str] = []

    # ----- value builders ---------------------------------------------------------------------
    def pw(self, op: str, *args, dtype=None) -> Value:
        arrays = [a for a in args if isinstance(a, Value)]
        if not arrays:
            raise Unsupported("pointwise op on scalars only")
        for a in arrays:
            if not a.is_array:
                raise Unsupported("pointwise op on a non-array value")
        shape = broadcast_shapes(*[a.shape for a in arrays])
        if dtype is None:
            dtype = np.result_type(*[a.dtype for a in arrays])
        return self.prog.add(Value("pointwise", shape, np.dtype(dtype), op, tuple(args)))

    def reduce(self, kind: str, v: Value, axes: tuple, keepdim: bool, dtype=None) -> Value:
        axes = tuple(sorted({a % len(v.shape) for a in axes})) if v.shape else ()
        shape = tuple(1 if i in axes else s for i, s in enumerate(v.shape)) if keepdim else \
            tuple(s for i, s in enumerate(v.shape) if i not in axes)
        if kind != "sum" and any(v.shape[a] == 0 for a in axes):
            raise Unsupported("max/min of an empty dimension")
        return self.prog.add(Value("reduce", shape, np.dtype(dtype or v.dtype), kind, (v,),
                                   {"axes": axes, "keepdim": keepdim}))

    def view(self, fn, v: Value, *params) -> Value:
        if not v.is_array:
            raise Unsupported("view of a non-array value")
        shape = view_shape(fn, v.shape, *params)
        return self.prog.add(Value("view", shape, v.dtype, fn, (v,), {"params": params}))

    def extern(self, fn, args: tuple, shape: tuple, dtype, *, out: bool = True, impure: bool = False,
               **attrs) -> Value:
        if self.cuda and fn not in kernels.DEVICE_NEUTRAL:
            raise Unsupported(f"{getattr(fn, '__name__', fn)} is a CPU kernel: the eager op runs on the device")
        return self.prog.add(Value("extern", tuple(shape), np.dtype(dtype), fn, tuple(args),
                                   {"out": out, "impure": impure, **attrs}))

    def cast(self, v: Value, dtype) -> Value:
        dtype = np.dtype(dtype)
        return v if v.dtype == dtype else self.pw("cast", v, dtype=dtype)

    # ----- the walk ---------------------------------------------------------------------------
    def run(self, inputs_meta: list) -> Program:
        env: dict = {}
        position = 0
        prog = self.prog
        for node in self.gm.graph.nodes:
            self.node = node
            if node.op == "placeholder":
                shape, dtype = inputs_meta[position]
                if dtype is None:
                    v = prog.add(Value("object", (), None, attrs={"index": position}))
                    v.kind = "input"
                else:
                    v = prog.add(Value("input", tuple(shape), np.dtype(dtype), attrs={"index": position}))
                prog.inputs.append(v)
                position += 1
                env[node] = v
            elif node.op == "get_attr":
                t = self.gm.get_attr_value(node.target)
                from engine.tensor import Tensor

                if not isinstance(t, Tensor):
                    env[node] = t
                    continue
                v = prog.add(Value("param", tuple(t._data.shape), t._data.dtype, attrs={"tensor": t}))
                prog.params.append(v)
                env[node] = v
            elif node.op == "call_function":
                env[node] = self.call(node, map_arg(node.args, env.__getitem__), map_arg(node.kwargs, env.__getitem__))
            elif node.op == "output":
                prog.output = map_arg(node.args[0], env.__getitem__)
        return prog

    def call(self, node, args, kwargs):
        target = node.target
        if target is operator.getitem and args and isinstance(args[0], tuple | list):
            return args[0][args[1]]
        if target is operator.getitem and args and isinstance(args[0], Value) and args[0].kind == "object":
            return self._item(node, args[0], args[1])
        special = _graph_ops().get(target)
        if special is not None:
            out = special(self, node, *args, **kwargs)
            if out is not NotImplemented:
                return out
        name = target_name(target)
        if name == "Tensor.size":
            v, dim = args[0], (args[1] if len(args) > 1 else kwargs.get("dim"))
            return tuple(v.shape) if dim is None else v.shape[dim]
        if target in (operator.add, operator.sub, operator.mul, operator.floordiv, operator.mod, operator.neg,
                      operator.truediv, operator.pow) and not any(isinstance(a, Value) for a in args):
            return target(*args)
        lowering = LOWERINGS.get(name)
        entry = registry.of(target)
        if lowering is not None and not (entry is not None and entry.mutates):
            mark = len(self.prog.values)
            try:
                out = lowering(self, *args, **kwargs)
                return self._check(node, out)
            except (Unsupported, TypeError):  # TypeError: arguments this lowering's signature does not take
                self._drop_after(mark)
        return self._fallback(node, target, entry, args, kwargs)

    def _drop_after(self, mark: int) -> None:
        for v in self.prog.values[mark:]:
            for a in self.prog.inputs_of(v):
                if v in a.users:
                    a.users.remove(v)
        del self.prog.values[mark:]

    def _check(self, node, out):
        """The lowered value must have the node's recorded shape; its dtype is cast to the recorded one."""
        expected = self.meta.get(node)
        if isinstance(out, Value) and expected is not None:
            shape, dtype = expected
            if tuple(shape) != out.shape:
                raise Unsupported(f"lowered shape {out.shape} differs from the graph's {tuple(shape)}")
            if dtype is not None and np.dtype(dtype) != out.dtype:
                out = self.cast(out, dtype)
        return out

    def _fallback(self, node, target, entry, args, kwargs):
        fn = entry.fn if entry is not None else target
        expected = self.meta.get(node)
        shape, dtype = expected if expected is not None else ((), None)
        mutates = entry is not None and entry.mutates
        impure = entry is None or entry.impure or entry.mutates
        flat: list = []
        map_values((args, kwargs), flat.append)
        v = self.prog.add(Value("fallback" if dtype is not None else "object", tuple(shape),
                                np.dtype(dtype) if dtype is not None else None, fn, (),
                                {"call_args": args, "call_kwargs": kwargs, "extra_inputs": tuple(flat),
                                 "mutates": mutates, "impure": impure, "label": node.op_name}))
        if v.kind == "object":
            v.attrs["object"] = True
        self.fallbacks.append(node.op_name)
        if mutates and args and isinstance(args[0], Value):
            return args[0]
        return v

    def _item(self, node, obj: Value, index):
        expected = self.meta.get(node)
        shape, dtype = expected if expected is not None else ((), None)
        v = self.prog.add(Value("item" if dtype is not None else "object", tuple(shape),
                                np.dtype(dtype) if dtype is not None else None, None, (obj,), {"index": index}))
        return v


# ----- the frontend's gradient nodes: inline code at replay, no eager fallback --------------------------
def _leaf_tensor(v) -> bool:
    return isinstance(v, Value) and (v.kind == "input" or (v.kind == "param" and "tensor" in v.attrs)) \
        and v.is_array


def _deliver_grads(L: Lowerer, node, leaves, grads):
    """Accumulate the traced backward's gradients into the leaves' ``.grad`` (``graph_ops.deliver_grads``)."""
    if not isinstance(leaves, tuple | list) or not isinstance(grads, tuple | list) or len(leaves) != len(grads):
        return NotImplemented
    pairs = []
    for leaf, g in zip(leaves, grads, strict=True):
        if g is None:
            continue
        if not _leaf_tensor(leaf) or not isinstance(g, Value) or not g.is_array or g.shape != leaf.shape:
            return NotImplemented
        pairs.append((leaf, g))
    return L.prog.add(Value("effect", (), None, "deliver_grads", tuple(v for pair in pairs for v in pair),
                            {"impure": True}))


def _read_grad(L: Lowerer, node, leaf):
    """The live ``.grad`` of a leaf: its tensor for outputs, its array for the ops that read it."""
    if not _leaf_tensor(leaf):
        return NotImplemented
    expected = L.meta.get(node)
    if expected is None or expected[1] is None or tuple(expected[0]) != leaf.shape:
        return NotImplemented
    return L.prog.add(Value("grad", leaf.shape, np.dtype(expected[1]), "read_grad", (leaf,), {"impure": True}))


def _set_grad(L: Lowerer, node, leaf, grad):
    if grad is not None or not _leaf_tensor(leaf):
        return NotImplemented
    return L.prog.add(Value("effect", (), None, "clear_grad", (leaf,), {"impure": True}))


def _keep_input(L: Lowerer, node, grad, source):
    """``grad_math.KeepInput`` (a piecewise-linear op's backward joined to its input under create_graph): at replay
    autograd is off, so it is ``grad`` itself."""
    return grad if isinstance(grad, Value) and grad.is_array else NotImplemented


def _embedding_backward(L: Lowerer, node, g, indices, shape, padding_idx):
    """``EmbeddingBackward`` (the weight's gradient of an embedding): one numba scatter-add kernel."""
    from engine._inductor import has_numba

    if not (isinstance(g, Value) and g.is_array and isinstance(indices, Value) and indices.is_array) \
            or indices.dtype.kind not in "iu" or len(shape) != 2 or g.dtype not in _FLOATS or not has_numba() \
            or g.shape != (*indices.shape, shape[1]):
        return NotImplemented
    n = int(np.prod(indices.shape, dtype=np.int64))
    rows = L.view(_reshape_fn, g, (n, shape[1]))
    flat = L.view(_reshape_fn, indices, (n,))
    pad = -1 if padding_idx is None else int(padding_idx)
    return L.extern(kernels.embedding_backward, (rows, flat), tuple(shape), g.dtype, params=(pad,))


_GRAPH_OPS: dict = {}


def _graph_ops() -> dict:
    if not _GRAPH_OPS:
        from engine._dynamo import graph_ops
        from engine.ops.embedding import EmbeddingBackward
        from engine.ops.grad_math import KeepInput

        _GRAPH_OPS.update({graph_ops.deliver_grads: _deliver_grads, graph_ops.read_grad: _read_grad,
                           graph_ops.set_grad: _set_grad, KeepInput.apply: _keep_input,
                           EmbeddingBackward.apply: _first_of(_embedding_backward)})
        from engine._inductor import conv, pool
        from engine._inductor.optim import lower_optimizer_step

        _GRAPH_OPS.update({graph_ops.call_method: lower_optimizer_step,
                           graph_ops.forward_with_ctx: _first_of(conv.lower_forward, pool.lower_forward_with_ctx,
                                                                 _lower_standardize_forward),
                           graph_ops.backward_with_ctx: _first_of(conv.lower_backward, pool.lower_backward_with_ctx,
                                                                  _lower_standardize_backward)})
    return _GRAPH_OPS


def _first_of(*lowerings):
    """One graph op lowered by whichever of ``lowerings`` takes the node first."""

    def lowering(L, node, *args):
        if L.cuda:  # numba kernels: the op's eager kernel runs on the device instead
            return NotImplemented
        for fn in lowerings:
            out = fn(L, node, *args)
            if out is not NotImplemented:
                return out
        return NotImplemented

    return lowering


# ----- helpers shared by lowerings --------------------------------------------------------------
def _dims(dim, ndim: int) -> tuple:
    if dim is None or dim == () or dim == []:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    return tuple(sorted({int(d) % ndim for d in dim})) if ndim else ()


def _float_of(v: Value):
    return v.dtype if v.dtype.kind == "f" else np.dtype(np.float32)


def _node_dtype(L: Lowerer):
    expected = L.meta.get(L.node)
    return None if expected is None or expected[1] is None else np.dtype(expected[1])


def _array(v) -> Value:
    if not isinstance(v, Value) or not v.is_array:
        raise Unsupported("expected an array argument")
    return v


# ----- pointwise --------------------------------------------------------------------------------
def _binary(op: str, reflected: bool = False):
    def fn(L, a, b, *, alpha=1, out=None):
        if out is not None:
            raise Unsupported("out=")
        if reflected:
            a, b = b, a
        if alpha != 1:
            b = L.pw("mul", b, alpha, dtype=_node_dtype(L)) if isinstance(b, Value) else b * alpha
        if not isinstance(a, Value) and not isinstance(b, Value):
            raise Unsupported("no array operand")
        for x in (a, b):
            if not (isinstance(x, Value) or _is_scalar(x)):
                raise Unsupported("operand is neither an array nor a number")
        return L.pw(op, a, b, dtype=_node_dtype(L))

    return fn


for _op, _names in {"add": ("Tensor.__add__", "engine.add", "operator.add"),
                    "sub": ("Tensor.__sub__", "engine.sub", "engine.subtract", "operator.sub"),
                    "mul": ("Tensor.__mul__", "engine.mul", "engine.multiply", "operator.mul"),
                    "div": ("Tensor.__truediv__", "engine.true_divide", "operator.truediv"),
                    "pow": ("Tensor.__pow__", "engine.pow", "operator.pow"),
                    "mod": ("Tensor.__mod__", "engine.remainder", "operator.mod"),
                    "floordiv": ("Tensor.__floordiv__", "engine.floor_divide", "operator.floordiv"),
                    "maximum": ("engine.maximum",), "minimum": ("engine.minimum",),
                    "gt": ("engine.gt", "engine.greater"), "ge": ("engine.ge", "engine.greater_equal"),
                    "lt": ("engine.lt", "engine.less"), "le": ("engine.le", "engine.less_equal"),
                    "eq": ("engine.eq",), "ne": ("engine.ne", "engine.not_equal"),
                    "logical_and": ("engine.logical_and",), "logical_or": ("engine.logical_or",)}.items():
    lower(*_names)(_binary(_op))
for _op, _names in {"add": ("Tensor.__radd__",), "sub": ("Tensor.__rsub__",), "mul": ("Tensor.__rmul__",),
                    "div": ("Tensor.__rtruediv__",), "pow": ("Tensor.__rpow__",), "mod": ("Tensor.__rmod__",),
                    "floordiv": ("Tensor.__rfloordiv__",)}.items():
    lower(*_names)(_binary(_op, reflected=True))


@lower("engine.div", "engine.divide")
def _div(L, a, b, *, rounding_mode=None, out=None):
    if rounding_mode is not None or out is not None:
        raise Unsupported("rounding_mode")
    return _binary("div")(L, a, b)


@lower("engine.rsub")
def _rsub(L, a, b, alpha=1):
    return _binary("sub")(L, b, a * alpha if alpha != 1 else a)


def _unary(op: str, float_only: bool = False):
    def fn(L, x, *, out=None):
        x = _array(x)
        if out is not None:
            raise Unsupported("out=")
        dtype = _node_dtype(L) or (_float_of(x) if float_only else x.dtype)
        return L.pw(op, x, dtype=dtype)

    return fn


for _op, _names in {"neg": ("engine.neg", "engine.negative", "operator.neg"),
                    "abs": ("engine.abs", "engine.absolute"), "exp": ("engine.exp",), "expm1": ("engine.expm1",),
                    "log": ("engine.log",), "log1p": ("engine.log1p",), "sqrt": ("engine.sqrt",),
                    "rsqrt": ("engine.rsqrt",), "sin": ("engine.sin",), "cos": ("engine.cos",),
                    "tanh": ("engine.tanh",), "erf": ("engine.erf",),
                    "floor": ("engine.floor",), "ceil": ("engine.ceil",), "square": ("engine.square",),
                    "reciprocal": ("engine.reciprocal",), "sign": ("engine.sign",),
                    "relu": ("engine.relu",), "logical_not": ("engine.logical_not",)}.items():
    lower(*_names)(_unary(_op))


def _sigmoid_of(L, x: Value, dtype) -> Value:
    # 1 / (1 + exp(-x)): the exp runs as a vectorized NumPy step, the rest fuses with its neighbours
    e = L.pw("exp", L.pw("neg", x, dtype=dtype), dtype=dtype)
    return L.pw("div", 1.0, L.pw("add", e, 1.0, dtype=dtype), dtype=dtype)


@lower("engine.sigmoid", "engine.nn.functional.sigmoid")
def _sigmoid(L, x, *, out=None):
    x = _array(x)
    if out is not None:
        raise Unsupported("out=")
    dtype = _node_dtype(L) or _float_of(x)
    return _sigmoid_of(L, L.cast(x, dtype), dtype)


@lower("engine.nn.functional.relu")
def _relu_f(L, x, inplace=False):
    if inplace:
        raise Unsupported("inplace")
    return L.pw("relu", _array(x), dtype=_node_dtype(L))


@lower("engine.silu", "engine.nn.functional.silu")
def _silu(L, x, inplace=False):
    x = _array(x)
    if inplace:
        raise Unsupported("inplace")
    dtype = _node_dtype(L) or _float_of(x)
    x = L.cast(x, dtype)
    return L.pw("mul", x, _sigmoid_of(L, x, dtype), dtype=dtype)


@lower("engine.gelu", "engine.nn.functional.gelu")
def _gelu(L, x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise Unsupported("approximate")
    return L.pw("gelu" if approximate == "none" else "gelu_tanh", _array(x), dtype=_node_dtype(L))


@lower("engine.nn.functional.leaky_relu")
def _leaky(L, x, negative_slope=0.01, inplace=False):
    if inplace:
        raise Unsupported("inplace")
    return L.pw("leaky_relu", _array(x), float(negative_slope), dtype=_node_dtype(L))


@lower("engine.clip", "engine.clamp")
def _clamp(L, x, min=None, max=None):
    x = _array(x)
    dtype = _node_dtype(L) or x.dtype
    if min is None and max is None:
        raise Unsupported("clamp without bounds")
    if min is not None:
        x = L.pw("maximum", x, min, dtype=dtype)
    if max is not None:
        x = L.pw("minimum", x, max, dtype=dtype)
    return x


@lower("engine.clamp_min")
def _clamp_min(L, x, min):
    return _clamp(L, x, min=min)


@lower("engine.clamp_max")
def _clamp_max(L, x, max):
    return _clamp(L, x, max=max)


@lower("engine.where")
def _where(L, condition, input=None, other=None):
    if input is None or other is None:
        raise Unsupported("where(condition) is nonzero")
    return L.pw("where", _array(condition), input, other, dtype=_node_dtype(L))


@lower("Tensor.where")
def _where_method(L, self, condition, other):
    return _where(L, condition, self, other)


@lower("engine.masked_fill")
def _masked_fill(L, input, mask, value):
    if isinstance(value, Value) and value.shape:
        raise Unsupported("non-scalar fill value")
    return L.pw("where", _array(mask), value, _array(input), dtype=_node_dtype(L))


# ----- constants ------------------------------------------------------------------------------------
def _constant(L, array: np.ndarray) -> Value:
    v = L.prog.add(Value("param", array.shape, array.dtype, attrs={"array": array}))
    L.prog.params.append(v)
    return v


@lower("engine.arange")
def _arange(L, start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, **kwargs):
    if any(isinstance(a, Value) for a in (start, end, step)) or kwargs or requires_grad:
        raise Unsupported("arange of tensors")
    if device is not None and not str(device).startswith("cpu"):
        raise Unsupported("arange on another device")
    out_dtype = _node_dtype(L)
    if out_dtype is None:
        raise Unsupported("unknown dtype")
    array = np.arange(start, end, step) if end is not None else np.arange(start)
    return _constant(L, array.astype(out_dtype))


@lower("engine.ones_like", "engine.zeros_like", "engine.full_like")
def _fill_like(L, input, *args, dtype=None, device=None, requires_grad=False, memory_format=None, layout=None):
    x = _array(input)
    name = L.node.op_name
    if device is not None and not str(device).startswith("cpu"):
        raise Unsupported("another device")
    value = 1 if name.endswith("ones_like") else 0 if name.endswith("zeros_like") else args[0] if args else None
    if value is None or isinstance(value, Value) or (len(args) > 1):
        raise Unsupported("fill value")
    out_dtype = _node_dtype(L) or x.dtype
    return L.extern(kernels.fill, (), x.shape, out_dtype, params=(value,))


@lower("engine.zeros", "engine.ones", "engine.full")
def _filled(L, *size, dtype=None, device=None, requires_grad=False, layout=None, out=None, pin_memory=False,
            fill_value=None):
    name = L.node.op_name
    if name == "engine.full":
        if len(size) == 2:
            size, fill_value = (size[0],), size[1]  # type: ignore[misc]
        if fill_value is None or isinstance(fill_value, Value):
            raise Unsupported("full without a number")
    value = 0 if name == "engine.zeros" else 1 if name == "engine.ones" else fill_value
    if out is not None or requires_grad or (device is not None and not str(device).startswith("cpu")):
        raise Unsupported("zeros on another device, with out= or requires_grad")
    out_dtype = _node_dtype(L)
    if out_dtype is None:
        raise Unsupported("unknown dtype")
    return L.extern(kernels.fill, (), _shape_arg(size), out_dtype, params=(value,))


@lower("engine.ops.indexing.EmbedSlice.apply")
def _embed_slice(L, g, shape, index):
    g = _array(g)
    if not _basic_index(index):
        raise Unsupported("advanced index")
    return L.extern(kernels.embed_slice, (g,), tuple(shape), g.dtype, params=(index,))


@lower("engine.ops.indexing.Gather.apply")
def _gather(L, x, dim, index):
    x, index = _array(x), _array(index)
    if not x.shape or index.dtype.kind not in "iu":
        raise Unsupported("gather of a 0-d tensor")
    return L.extern(kernels.gather, (x, index), index.shape, x.dtype, params=(int(dim) % len(x.shape),))


@lower("engine.ops.shape.Narrow.apply")
def _narrow_apply(L, x, dim, start, length):
    return _narrow(L, x, dim, start, length)


@lower("engine.ops.normalization.Standardize.apply")
def _standardize(L, x, axes, eps, stats):
    x = _array(x)
    if stats is not None or x.dtype.kind != "f" or x.dtype.itemsize < 4:
        raise Unsupported("standardize with given stats or in half precision")
    return _standardized(L, x, tuple(a % len(x.shape) for a in axes), eps)


def _standardized(L, x: Value, axes: tuple, eps: float) -> Value:
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance), as engine's Standardize op."""
    inv = 1.0 / int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    mean = L.pw("mul", L.reduce("sum", x, axes, True), inv)
    centered = L.pw("sub", x, mean)
    var = L.pw("mul", L.reduce("sum", L.pw("mul", centered, centered), axes, True), inv)
    return L.pw("mul", centered, L.pw("rsqrt", L.pw("add", var, float(eps))))


class StandardizeContext:
    """What a lowered ``Standardize`` forward leaves its backward: the normalized values and 1/std."""

    def __init__(self, xhat: Value, rstd: Value, axes: tuple):
        self.xhat, self.rstd, self.axes = xhat, rstd, axes


def _lower_standardize_forward(L, node, cls, needs_input_grad, *args):
    """``forward_with_ctx`` of ``Standardize`` (layer/group/instance norm in a training step): row kernels."""
    from engine._inductor.pool import _only_backward_reads_ctx
    from engine.ops.normalization import Standardize

    if cls is not Standardize or len(args) != 4:
        return NotImplemented
    x, axes, eps, stats = args
    if stats is not None or not isinstance(x, Value) or not x.is_array or x.dtype not in _FLOATS or not axes \
            or not _only_backward_reads_ctx(node):
        return NotImplemented
    axes = tuple(sorted({int(a) % len(x.shape) for a in axes}))
    inv = 1.0 / int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    mean = L.pw("mul", L.reduce("sum", x, axes, True), inv)
    centered = L.pw("sub", x, mean)
    var = L.pw("mul", L.reduce("sum", L.pw("mul", centered, centered), axes, True), inv)
    rstd = L.pw("rsqrt", L.pw("add", var, float(eps)))
    xhat = L.pw("mul", centered, rstd)
    return (xhat, StandardizeContext(xhat, rstd, axes))


def _lower_standardize_backward(L, node, cls, ctx, g):
    """rstd * (g - mean(g) - xhat * mean(g * xhat)), the eager backward's formula."""
    if not isinstance(ctx, StandardizeContext):
        return NotImplemented
    xhat, rstd, axes = ctx.xhat, ctx.rstd, ctx.axes
    if not isinstance(g, Value) or not g.is_array or g.shape != xhat.shape:
        # NOTE: never the eager backward on a lowered forward's context (it is not the op's ctx)
        raise RuntimeError(f"engine._inductor: layer norm backward got a gradient it cannot take ({g!r})")
    out_dtype = g.dtype
    gd = L.cast(g, xhat.dtype)
    inv = 1.0 / int(np.prod([xhat.shape[a] for a in axes], dtype=np.int64))
    mean_g = L.pw("mul", L.reduce("sum", gd, axes, True), inv)
    mean_gx = L.pw("mul", L.reduce("sum", L.pw("mul", gd, xhat), axes, True), inv)
    gx = L.pw("mul", rstd, L.pw("sub", L.pw("sub", gd, mean_g), L.pw("mul", xhat, mean_gx)))
    return (L.cast(gx, out_dtype), None, None, None)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----- dtype conversions and views -----------------------------------------------------------------
@lower("Tensor.float", "Tensor.double", "Tensor.long", "Tensor.int", "Tensor.bool", "Tensor.half",
       "Tensor.type_as", "Tensor.to")
def _convert(L, x, *args, **kwargs):
    x = _array(x)
    name = L.node.op_name
    if name == "Tensor.to":
        from engine.device import device as Device
        from engine.dtypes import dtype as Dtype

        for a in (*args, *kwargs.values()):
            if isinstance(a, Dtype) or isinstance(a, bool):
                continue
            if isinstance(a, str | Device) and str(a).startswith("cpu"):
                continue
            raise Unsupported("Tensor.to with a device or memory format")
    dtype = _node_dtype(L)
    if dtype is None:
        raise Unsupported("unknown result dtype")
    if args and name in ("Tensor.float", "Tensor.double", "Tensor.long", "Tensor.int", "Tensor.bool"):
        raise Unsupported("memory_format")
    return L.cast(x, dtype)


@lower("Tensor.contiguous", "Tensor.detach", "Tensor.data")
def _identity(L, x, *args, **kwargs):
    return _array(x)


@lower("engine.clone")
def _clone(L, x, *, memory_format=None):
    x = _array(x)
    return L.pw("cast", x, dtype=x.dtype)


def _shape_arg(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], tuple | list):
        args = tuple(args[0])
    if not all(isinstance(a, int) for a in args):
        raise Unsupported("symbolic or non-int shape")
    return tuple(int(a) for a in args)


def _reshape_fn(a, shape):
    return a.reshape(shape)


@lower("engine.reshape", "Tensor.view")
def _reshape(L, x, *shape, **kwargs):
    if kwargs.get("shape") is not None:
        shape = (kwargs["shape"],)
    if L.node.op_name == "Tensor.view" and shape and not isinstance(shape[0], tuple | list | int):
        raise Unsupported("view(dtype)")
    return L.view(_reshape_fn, _array(x), _shape_arg(shape))


@lower("Tensor.view_as", "Tensor.reshape_as")
def _view_as(L, x, other):
    return L.view(_reshape_fn, _array(x), _array(other).shape)


@lower("engine.flatten")
def _flatten(L, x, start_dim=0, end_dim=-1):
    x = _array(x)
    n = len(x.shape)
    if n == 0:
        return L.view(_reshape_fn, x, (1,))
    s, e = start_dim % n, end_dim % n
    shape = (*x.shape[:s], int(np.prod(x.shape[s:e + 1], dtype=np.int64)), *x.shape[e + 1:])
    return L.view(_reshape_fn, x, shape)


@lower("engine.unflatten")
def _unflatten(L, x, dim, sizes):
    x = _array(x)
    d = dim % len(x.shape)
    sizes = list(sizes)
    if -1 in sizes:
        known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
        sizes[sizes.index(-1)] = x.shape[d] // known
    return L.view(_reshape_fn, x, x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


@lower("engine.unsqueeze")
def _unsqueeze(L, x, dim):
    x = _array(x)
    d = dim % (len(x.shape) + 1)
    return L.view(_reshape_fn, x, (*x.shape[:d], 1, *x.shape[d:]))


@lower("engine.squeeze")
def _squeeze(L, x, dim=None):
    x = _array(x)
    n = len(x.shape)
    dims = set(range(n)) if dim is None else {d % n for d in ((dim,) if isinstance(dim, int) else dim)} if n else set()
    shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return L.view(_reshape_fn, x, shape)


def _transpose_fn(a, axes):
    return a.transpose(axes)


@lower("engine.transpose", "engine.swapaxes", "engine.swapdims")
def _transpose(L, x, dim0, dim1):
    x = _array(x)
    n = len(x.shape)
    if n == 0:
        return x
    axes = list(range(n))
    a, b = dim0 % n, dim1 % n
    axes[a], axes[b] = axes[b], axes[a]
    return L.view(_transpose_fn, x, tuple(axes))


@lower("engine.permute")
def _permute(L, x, *dims):
    x = _array(x)
    dims = _shape_arg(dims)
    return L.view(_transpose_fn, x, tuple(d % len(x.shape) for d in dims))


@lower("Tensor.T", "engine.t")
def _T(L, x):
    x = _array(x)
    return L.view(_transpose_fn, x, tuple(reversed(range(len(x.shape)))))


@lower("Tensor.mT")
def _mT(L, x):
    x = _array(x)
    axes = list(range(len(x.shape)))
    if len(axes) < 2:
        raise Unsupported("mT of a tensor with fewer than 2 dims")
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return L.view(_transpose_fn, x, tuple(axes))


def _expand_fn(a, shape):
    return np.broadcast_to(a, shape)


@lower("Tensor.expand")
def _expand(L, x, *sizes):
    x = _array(x)
    sizes = _shape_arg(sizes)
    lead = len(sizes) - len(x.shape)
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return L.view(_expand_fn, x, shape)


@lower("Tensor.expand_as")
def _expand_as(L, x, other):
    return L.view(_expand_fn, _array(x), _array(other).shape)


@lower("engine.broadcast_to")
def _broadcast_to(L, x, size):
    return L.view(_expand_fn, _array(x), _shape_arg((size,)))


def _index_fn(a, index):
    return a[index]


def _basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if isinstance(i, slice):
            if not all(p is None or (isinstance(p, int) and not isinstance(p, bool)) for p in (i.start, i.stop, i.step)):
                return False
            if i.step is not None and i.step <= 0:
                return False
        elif not (i is None or i is Ellipsis or (isinstance(i, int) and not isinstance(i, bool))):
            return False
    return True


@lower("Tensor.__getitem__", "operator.getitem")
def _getitem(L, x, index):
    x = _array(x)
    if not _basic_index(index):
        raise Unsupported("advanced indexing")
    return L.view(_index_fn, x, index)


@lower("engine.split")
def _split(L, tensor, split_size_or_sections, dim=0):
    x = _array(tensor)
    d = dim % len(x.shape)
    size = x.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise Unsupported("split size must be positive")
        sizes = [min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != size:
            raise Unsupported("split sections do not sum to the size (eager raises the error)")
    out, start = [], 0
    for n in sizes:
        out.append(L.view(_index_fn, x, (slice(None),) * d + (slice(start, start + n),)))
        start += n
    return tuple(out)


@lower("engine.chunk")
def _chunk(L, input, chunks, dim=0):
    x = _array(input)
    size = x.shape[dim % len(x.shape)]
    return _split(L, x, max(-(-size // int(chunks)), 1), dim)


@lower("engine.narrow")
def _narrow(L, x, dim, start, length):
    x = _array(x)
    d = dim % len(x.shape)
    start = start % x.shape[d] if start < 0 else start
    return L.view(_index_fn, x, (slice(None),) * d + (slice(start, start + length),))


@lower("engine.select")
def _select(L, x, dim, index):
    x = _array(x)
    d = dim % len(x.shape)
    return L.view(_index_fn, x, (slice(None),) * d + (index,))


# ----- reductions -------------------------------------------------------------------------------------
@lower("engine.sum")
def _sum(L, x, dim=None, keepdim=False, *, dtype=None):
    x = _array(x)
    out_dtype = _node_dtype(L) or x.dtype
    if x.dtype.kind in "bui":
        x = L.cast(x, out_dtype)
    return L.reduce("sum", x, _dims(dim, len(x.shape)), keepdim, out_dtype)


@lower("engine.mean")
def _mean(L, x, dim=None, keepdim=False, *, dtype=None):
    x = _array(x)
    out_dtype = _node_dtype(L) or x.dtype
    if out_dtype.kind != "f":
        raise Unsupported("mean of integers")
    x = L.cast(x, out_dtype)
    axes = _dims(dim, len(x.shape))
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    s = L.reduce("sum", x, axes, keepdim, out_dtype)
    return L.pw("mul", s, 1.0 / count if count else math.nan, dtype=out_dtype)


@lower("engine.amax", "engine.amin")
def _amax(L, x, dim=(), keepdim=False):
    x = _array(x)
    kind = "max" if L.node.op_name.endswith("amax") else "min"
    return L.reduce(kind, x, _dims(dim, len(x.shape)), keepdim)


@lower("engine.max", "engine.min")
def _max(L, x, dim=None, keepdim=False, *, other=None):
    if dim is not None or other is not None:
        raise Unsupported("max with dim returns indices")
    x = _array(x)
    return L.reduce("max" if L.node.op_name.endswith("max") else "min", x, tuple(range(len(x.shape))), False)


@lower("engine.ops.reduction.Sum.apply")
def _sum_apply(L, x, dims, keepdim):
    x = _array(x)
    return L.reduce("sum", x, _dims(dims, len(x.shape)), keepdim)


@lower("engine.logsumexp")
def _logsumexp(L, x, dim, keepdim=False):
    x = _array(x)
    axes = _dims(dim, len(x.shape))
    m = L.reduce("max", x, axes, True)
    # NOTE: an all -inf row has max -inf: shift by 0 there, as eager does, so the result is -inf, not nan
    safe = L.pw("where", L.pw("eq", m, -math.inf, dtype=np.bool_), 0.0, m, dtype=x.dtype)
    s = L.reduce("sum", L.pw("exp", L.pw("sub", x, safe)), axes, True)
    out = L.pw("add", L.pw("log", s), safe)
    return out if keepdim else L.view(_reshape_fn, out, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def _softmax_parts(L, x, dim):
    dtype = _node_dtype(L) or _float_of(x)
    x = L.cast(x, dtype)
    if not x.shape:
        raise Unsupported("softmax of a 0-d tensor")
    if dim is None:
        dim = 0 if len(x.shape) in (0, 1, 3) else 1
    axes = (dim % len(x.shape),)
    m = L.reduce("max", x, axes, True)
    shifted = L.pw("sub", x, m)
    e = L.pw("exp", shifted)
    return shifted, e, L.reduce("sum", e, axes, True)


@lower("engine.softmax", "engine.nn.functional.softmax")
def _softmax(L, x, dim=None, _stacklevel=3, dtype=None):
    _, e, s = _softmax_parts(L, _array(x), dim)
    return L.pw("div", e, s)  # NOTE: the exp the sum read (one ufunc pass, not two)


@lower("engine.log_softmax", "engine.nn.functional.log_softmax")
def _log_softmax(L, x, dim=None, _stacklevel=3, dtype=None):
    shifted, _, s = _softmax_parts(L, _array(x), dim)
    return L.pw("sub", shifted, L.pw("log", s))


@lower("engine.nn.functional.layer_norm")
def _layer_norm(L, x, normalized_shape, weight=None, bias=None, eps=1e-5):
    from engine.amp import autocast_state

    x = _array(x)
    if autocast_state.active or x.dtype.kind != "f" or x.dtype.itemsize < 4:
        raise Unsupported("layer_norm under autocast or in half precision")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    nd = len(shape)
    if tuple(x.shape[len(x.shape) - nd:]) != shape:
        raise Unsupported("normalized_shape mismatch (eager raises the error)")
    out = _standardized(L, x, tuple(range(len(x.shape) - nd, len(x.shape))), eps)
    if weight is not None:
        out = L.pw("mul", out, _array(weight))
    if bias is not None:
        out = L.pw("add", out, _array(bias))
    return out


@lower("engine.nn.functional.batch_norm")
def _batch_norm(L, input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                eps=1e-5):
    x = _array(input)
    if training or running_mean is None or running_var is None or x.dtype.kind != "f" or x.dtype.itemsize < 4 \
            or len(x.shape) < 2:
        raise Unsupported("training batch norm updates running statistics: eager kernel")
    channel = (x.shape[1],) + (1,) * (len(x.shape) - 2)

    def per_channel(v):
        return L.view(_reshape_fn, _array(v), channel)

    rstd = L.pw("rsqrt", L.pw("add", per_channel(running_var), float(eps), dtype=x.dtype), dtype=x.dtype)
    out = L.pw("mul", L.pw("sub", x, per_channel(running_mean), dtype=x.dtype), rstd, dtype=x.dtype)
    if weight is not None:
        out = L.pw("mul", out, per_channel(weight), dtype=x.dtype)
    if bias is not None:
        out = L.pw("add", out, per_channel(bias), dtype=x.dtype)
    return out


@lower("engine.nn.functional.dropout")
def _dropout(L, x, p=0.5, training=True, inplace=False):
    x = _array(x)
    if p < 0.0 or p > 1.0:
        raise Unsupported("bad p (eager raises the error)")
    if not training or p == 0.0:
        return x
    if inplace or p == 1.0 or x.dtype.kind != "f":
        raise Unsupported("inplace or p == 1 dropout")
    u = L.extern(kernels.uniform, (), x.shape, np.float64 if x.dtype == np.float64 else np.float32,
                 out=False, impure=True, params=(x.shape, x.dtype))
    keep = L.pw("keep", u, float(p), 1.0 / (1.0 - p), dtype=x.dtype)
    return L.pw("mul", x, keep, dtype=x.dtype)


# ----- BLAS, convolution, pooling, lookups, losses -------------------------------------------------
def _same_float(*vs) -> np.dtype:
    dtypes = {v.dtype for v in vs}
    if len(dtypes) != 1 or next(iter(dtypes)).kind != "f" or next(iter(dtypes)).itemsize < 4:
        raise Unsupported("matmul of mixed or non-float dtypes")
    return next(iter(dtypes))


def _matmul_shape(a: tuple, b: tuple) -> tuple:
    if not a or not b:
        raise Unsupported("matmul of a 0-d tensor")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise Unsupported("matmul shape mismatch (eager raises the error)")
    shape = (*broadcast_shapes(a2[:-2], b2[:-2]), a2[-2], b2[-1])
    if len(a) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(b) == 1:
        shape = shape[:-1]
    return shape


@lower("engine.matmul", "engine.mm", "engine.bmm", "Tensor.__rmatmul__")
def _matmul(L, a, b, *, out=None):
    if out is not None:
        raise Unsupported("out=")
    if L.node.op_name == "Tensor.__rmatmul__":
        a, b = b, a
    a, b = _array(a), _array(b)
    dtype = _same_float(a, b)
    return L.extern(kernels.matmul, (a, b), _matmul_shape(a.shape, b.shape), dtype)


@lower("engine.nn.functional.linear")
def _linear(L, x, weight, bias=None):
    x, weight = _array(x), _array(weight)
    dtype = _same_float(x, weight)
    if len(weight.shape) != 2:
        raise Unsupported("linear weight must be 2-d")
    wt = L.view(_transpose_fn, weight, (1, 0))
    out = L.extern(kernels.matmul, (x, wt), _matmul_shape(x.shape, wt.shape), dtype)
    return out if bias is None else L.pw("add", out, _array(bias), dtype=dtype)


def _pair(v) -> tuple:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)


@lower("engine.nn.functional.conv2d")
def _conv2d(L, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    from engine.amp import autocast_state

    x, weight = _array(x), _array(weight)
    dtype = _same_float(x, weight)
    if autocast_state.active or groups != 1 or len(x.shape) != 4 or isinstance(padding, str):
        raise Unsupported("grouped, unbatched or string-padded conv2d")
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, w = x.shape
    o, ci, kh, kw = weight.shape
    if ci != c:
        raise Unsupported("channel mismatch (eager raises the error)")
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if ho <= 0 or wo <= 0:
        raise Unsupported("empty output")
    conv = kernels.Conv2d(x.shape, weight.shape, (sh, sw), (ph, pw), (dh, dw), dtype)
    out = L.view(_transpose_fn, L.extern(conv, (x, weight), (o, n, ho, wo), dtype), (1, 0, 2, 3))
    if bias is None:
        return out
    return L.pw("add", out, L.view(_reshape_fn, _array(bias), (o, 1, 1)), dtype=dtype)


@lower("engine.nn.functional.max_pool2d")
def _max_pool2d(L, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    x = _array(x)
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    if return_indices or ceil_mode or _pair(padding) != (0, 0) or _pair(dilation) != (1, 1) or stride != kernel \
            or len(x.shape) != 4 or x.shape[2] % kernel[0] or x.shape[3] % kernel[1]:
        raise Unsupported("max_pool2d other than non-overlapping windows that tile the input")
    n, c, h, w = x.shape
    kh, kw = kernel
    return L.extern(kernels.max_pool2d, (x,), (n, c, h // kh, w // kw), x.dtype, params=(kh, kw))


@lower("engine.nn.functional.embedding")
def _embedding(L, input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
               sparse=False):
    input, weight = _array(input), _array(weight)
    if max_norm is not None or scale_grad_by_freq or input.dtype.kind not in "iu" or len(weight.shape) != 2:
        raise Unsupported("embedding with max_norm / non-integer indices")
    return L.extern(kernels.embedding, (weight, input), input.shape + weight.shape[1:], weight.dtype)


@lower("engine.nn.functional.cross_entropy")
def _cross_entropy(L, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                   reduction="mean", label_smoothing=0.0):
    from engine.amp import autocast_state

    input, target = _array(input), _array(target)
    if autocast_state.active or weight is not None or size_average is not None or reduce is not None \
            or label_smoothing != 0.0 or len(input.shape) != 2 or target.dtype.kind not in "iu" \
            or reduction not in ("mean", "sum", "none"):
        raise Unsupported("cross_entropy with weights, smoothing, probabilities or spatial dims")
    shifted, _, s = _softmax_parts(L, input, 1)
    logp = L.pw("sub", shifted, L.pw("log", s))
    return _nll(L, logp, target, ignore_index, reduction)


@lower("engine.nn.functional.nll_loss")
def _nll_loss(L, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    input, target = _array(input), _array(target)
    if weight is not None or size_average is not None or reduce is not None or len(input.shape) != 2 \
            or target.dtype.kind not in "iu" or reduction not in ("mean", "sum", "none") or input.dtype.kind != "f":
        raise Unsupported("nll_loss with weights or spatial dims")
    return _nll(L, input, target, ignore_index, reduction)


def _nll(L, logp: Value, target: Value, ignore_index: int, reduction: str) -> Value:
    shape = target.shape if reduction == "none" else ()
    return L.extern(kernels.nll, (logp, target), shape, logp.dtype, params=(int(ignore_index), reduction))


@lower("engine.nn.functional.scaled_dot_product_attention")
def _sdpa(L, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    q, k, v = _array(query), _array(key), _array(value)
    if dropout_p != 0.0 or enable_gqa or len(q.shape) < 2:
        raise Unsupported("sdpa with dropout or gqa")
    dtype = _same_float(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    kt = L.view(_transpose_fn, k, (*tuple(range(len(k.shape) - 2)), len(k.shape) - 1, len(k.shape) - 2))
    scores = L.extern(kernels.matmul, (q, kt), _matmul_shape(q.shape, kt.shape), dtype)
    scores = L.pw("mul", scores, scale, dtype=dtype)
    if is_causal:
        lq, lk = q.shape[-2], k.shape[-2]
        mask = np.tril(np.ones((lq, lk), dtype=bool))
        mv = L.prog.add(Value("param", mask.shape, mask.dtype, attrs={"array": mask}))
        L.prog.params.append(mv)
        scores = L.pw("where", mv, scores, -math.inf, dtype=dtype)
    if attn_mask is not None:
        attn_mask = _array(attn_mask)
        if attn_mask.dtype == np.bool_:
            scores = L.pw("where", attn_mask, scores, -math.inf, dtype=dtype)
        else:
            scores = L.pw("add", scores, attn_mask, dtype=dtype)
    axes = (len(scores.shape) - 1,)
    m = L.reduce("max", scores, axes, True)
    e = L.pw("exp", L.pw("sub", scores, m))
    p = L.pw("div", e, L.reduce("sum", e, axes, True))
    return L.extern(kernels.matmul, (p, v), _matmul_shape(p.shape, v.shape), dtype)
