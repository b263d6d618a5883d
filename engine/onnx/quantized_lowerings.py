"""ONNX lowerings of the quantized ops (engine.ao): QDQ models that onnxruntime runs.

A quantized value is a uint8 / int8 ONNX tensor whose (scale, zero_point) the context remembers
(``ctx.qparams``). Static ops become ``DequantizeLinear -> float op -> QuantizeLinear`` with the
module's output qparams (onnxruntime fuses such QDQ groups into its integer kernels); int8
weights are initializers dequantized per channel (``axis=0``) or per tensor. A dynamic quantized
Linear is a dynamic QuantizeLinear -> ``MatMulInteger`` scaled back to float; a dynamic LSTM / GRU
dequantizes its weights into ONNX's float LSTM / GRU. The activation qparams follow fbgemm's 7-bit
``reduce_range`` rule, as the engine computes them.
"""

from __future__ import annotations

import numpy as np

from engine.fx import registry
from engine.onnx.lowerings import _bound, _pair, _rank, _unsupported
from engine.onnx.rnn_lowerings import lower_recurrent

_INT = {"quint8": np.uint8, "qint8": np.int8}


class QParams:
    """(scale, zero_point) of a quantized ONNX value: per tensor (axis None) or per channel."""

    __slots__ = ("axis", "dtype", "scale", "zero_point")

    def __init__(self, scale, zero_point, dtype_name: str, axis: int | None = None):
        if dtype_name not in _INT:
            raise ValueError(f"{dtype_name} has no ONNX QuantizeLinear form (quint8 and qint8 do)")
        self.scale, self.zero_point, self.dtype, self.axis = scale, zero_point, dtype_name, axis

    @classmethod
    def of(cls, q) -> QParams:
        """The qparams of an engine QTensor."""
        if q._axis is None:
            return cls(float(q._scales), int(q._zero_points), q._dtype.name)
        return cls(list(q._scales), list(q._zero_points), q._dtype.name, q._axis)

    def consts(self, ctx) -> tuple[str, str]:
        scale = np.asarray(self.scale, dtype=np.float32)
        zero_point = np.asarray(self.zero_point, dtype=_INT[self.dtype])
        return ctx.const(scale, hint="scale"), ctx.const(zero_point, hint="zero_point")


def _params(ctx, node, name: str) -> QParams:
    q = ctx.qparams.get(name)
    if q is None:
        raise _unsupported(node, "a quantized op whose input is not a quantized value of this graph")
    return q


def dequantized(ctx, node, name: str) -> str:
    """A float value for the quantized value ``name`` (DequantizeLinear)."""
    q = _params(ctx, node, name)
    scale, zero_point = q.consts(ctx)
    attrs = {} if q.axis is None else {"axis": q.axis}
    return ctx.op("DequantizeLinear", [name, scale, zero_point], **attrs)


def quantized(ctx, value: str, q: QParams) -> str:
    """QuantizeLinear of a float value with ``q``; the result remembers its qparams."""
    scale, zero_point = q.consts(ctx)
    out = ctx.op("QuantizeLinear", [value, scale, zero_point])
    ctx.qparams[out] = q
    return out


def _output(ctx, y: str, scale, zero_point, relu: bool = False) -> str:
    if relu:
        y = ctx.op("Relu", [y])
    return quantized(ctx, y, QParams(float(scale), int(zero_point), "quint8"))


def install() -> None:
    _tensors()
    _static()
    _dynamic()


def _tensors() -> None:
    @_bound([registry.lookup("engine.quantize_per_tensor").call])
    def quantize_per_tensor(ctx, node, a):
        if not isinstance(a["scale"], float | int) or not isinstance(a["zero_point"], int):
            raise _unsupported(node, "scale and zero_point computed from tensors")
        return quantized(ctx, a["input"], QParams(float(a["scale"]), int(a["zero_point"]), a["dtype"].name))

    def dequantize(ctx, node, x):
        return dequantized(ctx, node, x) if x in ctx.qparams else ctx.op("Identity", [x])

    registry.lookup("engine.dequantize").onnx = dequantize
    registry.lookup("QTensor.dequantize").onnx = dequantize
    from engine.tensor import Tensor

    # value-preserving methods: the float lowering on the integers, the qparams unchanged
    for name in ("view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "__getitem__"):
        float_lowering = registry.of(getattr(Tensor, name)).onnx
        registry.lookup(f"QTensor.{name}").onnx = _keeping_qparams(float_lowering)
    for name in ("clone", "contiguous", "detach"):
        registry.lookup(f"QTensor.{name}").onnx = _keeping_qparams(lambda ctx, node, x, *rest, **kw: ctx.op(
            "Identity", [x]))

    def relu(ctx, node, x):
        return quantized(ctx, ctx.op("Relu", [dequantized(ctx, node, x)]), _params(ctx, node, x))

    registry.lookup("QTensor.relu").onnx = relu


def _keeping_qparams(lowering):
    def lower(ctx, node, x, *args, **kwargs):
        q = _params(ctx, node, x)
        if q.axis is not None:
            raise _unsupported(node, "a shape op on a per-channel quantized tensor")
        out = lowering(ctx, node, x, *args, **kwargs)
        ctx.qparams[out] = q
        return out

    return lower


def _weight(ctx, node, a) -> tuple[str, str | None]:
    return dequantized(ctx, node, a["weight"]), a["bias"]


def _static() -> None:
    @_bound([registry.lookup("quantized.linear").call])
    def linear(ctx, node, a):
        x = dequantized(ctx, node, a["x"])
        w, bias = _weight(ctx, node, a)
        if _rank(node) == 2:
            y = ctx.op("Gemm", [x, w, bias], transB=1)
        else:
            y = ctx.op("MatMul", [x, ctx.op("Transpose", [w], perm=[1, 0])])
            y = y if bias is None else ctx.op("Add", [y, bias])
        return _output(ctx, y, a["scale"], a["zero_point"], a["relu"])

    @_bound([registry.lookup("quantized.conv2d").call])
    def conv2d(ctx, node, a):
        x = dequantized(ctx, node, a["x"])
        w, bias = _weight(ctx, node, a)
        pads = list(_pair(a["padding"]))
        y = ctx.op("Conv", [x, w, bias], strides=list(_pair(a["stride"])), pads=pads + pads,
                   dilations=list(_pair(a["dilation"])))
        return _output(ctx, y, a["scale"], a["zero_point"], a["relu"])

    @_bound([registry.lookup("quantized.max_pool2d").call])
    def max_pool2d(ctx, node, a):
        kernel = _pair(a["kernel_size"])
        stride = _pair(a["stride"] if a["stride"] not in (None, ()) else kernel)
        # NOTE: the max of the integers is the integer of the max: MaxPool runs on the uint8 values.
        out = ctx.op("MaxPool", [a["x"]], kernel_shape=list(kernel), strides=list(stride),
                     pads=list(_pair(a["padding"])) * 2, dilations=list(_pair(a["dilation"])),
                     ceil_mode=int(a["ceil_mode"]))
        ctx.qparams[out] = _params(ctx, node, a["x"])
        return out

    @_bound([registry.lookup("quantized.add").call])
    def add(ctx, node, a):
        y = ctx.op("Add", [dequantized(ctx, node, a["x"]), dequantized(ctx, node, a["y"])])
        return _output(ctx, y, a["scale"], a["zero_point"], a["relu"])

    @_bound([registry.lookup("quantized.mul").call])
    def mul(ctx, node, a):
        y = ctx.op("Mul", [dequantized(ctx, node, a["x"]), dequantized(ctx, node, a["y"])])
        return _output(ctx, y, a["scale"], a["zero_point"])

    @_bound([registry.lookup("quantized.add_scalar").call, registry.lookup("quantized.mul_scalar").call])
    def scalar(ctx, node, a):
        x = dequantized(ctx, node, a["x"])
        op_type = "Add" if node.op_name.endswith("add_scalar") else "Mul"
        return _output(ctx, ctx.op(op_type, [x, ctx.tensor(float(a["other"]), x)]), a["scale"], a["zero_point"])

    @_bound([registry.lookup("quantized.cat").call])
    def cat(ctx, node, a):
        y = ctx.op("Concat", [dequantized(ctx, node, t) for t in a["tensors"]], axis=a["dim"])
        return _output(ctx, y, a["scale"], a["zero_point"])


def _dynamic_quantize(ctx, x: str, reduce_range: bool):
    """(x_q, scale, zero_point) of a float value, quantized with qparams from its own min / max.

    Without ``reduce_range`` this is ``DynamicQuantizeLinear``; with it (fbgemm's default, the engine's)
    the same rule over 7 bits: scale = (max(x, 0) - min(x, 0)) / 127, zero_point = round(-min / scale).
    """
    if not reduce_range:
        return ctx.op("DynamicQuantizeLinear", [x], n_out=3)
    f32 = lambda v: ctx.const(np.array(v, np.float32))  # noqa: E731
    low = ctx.op("Min", [ctx.op("ReduceMin", [x], keepdims=0), f32(0.0)])
    high = ctx.op("Max", [ctx.op("ReduceMax", [x], keepdims=0), f32(0.0)])
    scale = ctx.op("Div", [ctx.op("Sub", [high, low]), f32(127.0)])
    scale = ctx.op("Where", [ctx.op("Equal", [scale, f32(0.0)]), f32(0.1), scale])  # fbgemm: an all-zero x
    zero_point = ctx.op("Cast", [ctx.op("Clip", [ctx.op("Round", [ctx.op("Neg", [ctx.op("Div", [low, scale])])]),
                                                 f32(0.0), f32(127.0)])], to=2)
    return ctx.op("QuantizeLinear", [x, scale, zero_point]), scale, zero_point


def _dynamic() -> None:
    @_bound([registry.lookup("quantized.linear_dynamic").call])
    def linear_dynamic(ctx, node, a):
        w = a["weight"]
        q = _params(ctx, node, w)
        if q.dtype != "qint8":
            raise _unsupported(node, f"a {q.dtype} weight (qint8 lowers to MatMulInteger)")
        x_q, x_scale, x_zero_point = _dynamic_quantize(ctx, a["x"], a["reduce_range"])
        w_scale, w_zero_point = q.consts(ctx)
        acc = ctx.op("MatMulInteger", [x_q, ctx.op("Transpose", [w], perm=[1, 0]), x_zero_point, w_zero_point])
        y = ctx.op("Mul", [ctx.op("Cast", [acc], to=1), ctx.op("Mul", [x_scale, w_scale])])
        return y if a["bias"] is None else ctx.op("Add", [y, a["bias"]])

    def recurrent(kind: str):
        def lower(ctx, node, a):
            params = [dequantized(ctx, node, p) if p in ctx.qparams else p for p in a["params"]]
            states = list(a["hx"]) if kind == "LSTM" else [a["hx"]]
            hidden = node.args[2][1].meta["shape"][1]  # weight_hh_l0: (gates * H, H)
            return lower_recurrent(ctx, kind, a["input"], states, params, hidden=hidden, has_biases=a["has_biases"],
                                   num_layers=a["num_layers"], bidirectional=a["bidirectional"], batch_first=False)

        return lower

    _bound([registry.lookup("quantized.lstm_dynamic").call])(recurrent("LSTM"))
    _bound([registry.lookup("quantized.gru_dynamic").call])(recurrent("GRU"))
