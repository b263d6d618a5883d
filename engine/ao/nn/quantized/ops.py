"""The quantized ops of the op registry (``torch.ops.quantized.*``): what quantized modules compute.

Each quantized module's forward is one registered op (``quantized.linear``, ``quantized.conv2d``,
``quantized.linear_dynamic`` ...), and ``quantize_per_tensor``, ``dequantize`` and the value-preserving
``QTensor`` methods (view, flatten, relu ...) are registered too. So graph capture records a quantized
model as it records a float one (``engine.jit.trace`` runs it at any batch size), and ``engine.onnx``
lowers each op to QuantizeLinear / DequantizeLinear around float ops (QDQ).
"""

from __future__ import annotations

import numpy as np

from engine.ao.nn.quantized import kernels
from engine.ao.quantization import qtensor as _q
from engine.ao.quantization.qtensor import QTensor, _qtensor, per_tensor_affine, quantize_array
from engine.dtypes import as_dtype, quint8
from engine.fx import registry
from engine.tensor import Tensor, _make


def _weight_scales(w: QTensor):
    return w._scales if w._axis is None else np.asarray(w._scales, np.float32)


def _requantize(xp, acc, x: QTensor, weight: QTensor, bias, scale: float, zero_point: int, relu: bool,
                axis: int) -> QTensor:
    out = kernels.requantize(xp, acc, x._scales, _weight_scales(weight), None if bias is None else bias._data, scale,
                             zero_point, relu, axis)
    return _qtensor(out, quint8, x._device, per_tensor_affine, scale, zero_point, None)


def _centered(x: QTensor):
    return x._data.astype(np.int16) - np.int16(x._zero_points)


def linear(x: QTensor, weight: QTensor, bias, scale: float, zero_point: int, relu: bool = False) -> QTensor:
    """quint8 x (.., K) times the qint8 weight (N, K), int32 accumulation, requantized to quint8."""
    xp = x._device.xp
    acc = kernels.int_matmul(xp, _centered(x), kernels.packed_weight(weight), 255)
    return _requantize(xp, acc, x, weight, bias, scale, zero_point, relu, acc.ndim - 1)


def conv2d(x: QTensor, weight: QTensor, bias, stride, padding, dilation, scale: float, zero_point: int,
           relu: bool = False) -> QTensor:
    """Quantized 2-d convolution (groups=1, zeros padding) as im2col + the int8 GEMM."""
    xp = x._device.xp
    cols, _, _ = kernels.im2col(xp, _centered(x), tuple(weight.shape[2:]), stride, padding, dilation)
    acc = kernels.int_matmul(xp, cols, kernels.packed_weight(weight), 255)  # (N, Ho, Wo, C_out)
    return _requantize(xp, acc.transpose(0, 3, 1, 2), x, weight, bias, scale, zero_point, relu, 1)


def max_pool2d(x: QTensor, kernel_size, stride, padding, dilation, ceil_mode: bool) -> QTensor:
    """Max pooling of the integers (the max of the integers is the integer of the max)."""
    from engine.ops.pooling import max_pool2d as float_max_pool2d

    plain = _make(x._data.astype(np.float32), as_dtype("float32"), x._device)
    pooled = float_max_pool2d(plain, kernel_size, stride, padding, dilation, ceil_mode)
    return x._like(pooled._data.astype(x._data.dtype))


def linear_dynamic(x: Tensor, weight: QTensor, bias, reduce_range: bool = True) -> Tensor:
    """Float x (.., K): quantized per call (fbgemm's qparams from its min/max), int8 GEMM, float out."""
    xp = x._device.xp
    data = x.detach()._data.astype(np.float32, copy=False)
    flat = data.reshape(-1, data.shape[-1])
    out = kernels.dynamic_linear(xp, flat, weight, None if bias is None else bias._data, reduce_range)
    return _make(out.reshape(*data.shape[:-1], out.shape[-1]), as_dtype("float32"), x._device)


def lstm_dynamic(input, hx, params, has_biases: bool, num_layers: int, bidirectional: bool,
                 reduce_range: bool = True):
    """A dynamic quantized LSTM over (L, N, H_in): returns (output, h_n, c_n) (qint8 weights in ``params``)."""
    from engine.ops.rnn import lstm_cell_update, run_layers
    from engine.ops.shape import stack

    def project(x, w, b):
        return linear_dynamic(x, w, b, reduce_range)

    def cell(gi, state, w_hh, b_hh):
        h, c = state
        return lstm_cell_update(gi + project(h, w_hh, b_hh), c)

    h0, c0 = hx
    states = list(zip(h0.unbind(0), c0.unbind(0), strict=True))
    out, finals = run_layers(input, states, list(params), has_biases, num_layers, 0.0, False, bidirectional, cell,
                             project=project)
    return out, stack([h for h, _ in finals], 0), stack([c for _, c in finals], 0)


def gru_dynamic(input, hx, params, has_biases: bool, num_layers: int, bidirectional: bool,
                reduce_range: bool = True):
    """A dynamic quantized GRU over (L, N, H_in): returns (output, h_n)."""
    from engine.ops.rnn import gru_cell_update, run_layers
    from engine.ops.shape import stack

    def project(x, w, b):
        return linear_dynamic(x, w, b, reduce_range)

    def cell(gi, h, w_hh, b_hh):
        return gru_cell_update(gi, project(h, w_hh, b_hh), h)

    out, finals = run_layers(input, list(hx.unbind(0)), list(params), has_biases, num_layers, 0.0, False,
                             bidirectional, cell, project=project)
    return out, stack(finals, 0)


def _requantize_float(value, device, scale: float, zero_point: int, relu: bool = False) -> QTensor:
    xp = device.xp
    q = quantize_array(xp, value, scale, zero_point, quint8)
    if relu:
        q = xp.maximum(q, np.uint8(zero_point))
    return _qtensor(q, quint8, device, per_tensor_affine, scale, zero_point, None)


def _float(x) -> np.ndarray:
    if not isinstance(x, QTensor):
        raise RuntimeError("QFunctional expects quantized inputs; put a QuantStub before it")
    return x.dequantize()._data


def add(x: QTensor, y: QTensor, scale: float, zero_point: int, relu: bool = False) -> QTensor:
    """Quantized add (``QFunctional.add`` / ``add_relu``): dequantize, add in float32, requantize."""
    return _requantize_float(_float(x) + _float(y), x._device, scale, zero_point, relu)


def mul(x: QTensor, y: QTensor, scale: float, zero_point: int) -> QTensor:
    return _requantize_float(_float(x) * _float(y), x._device, scale, zero_point)


def add_scalar(x: QTensor, other: float, scale: float, zero_point: int) -> QTensor:
    return _requantize_float(_float(x) + np.float32(other), x._device, scale, zero_point)


def mul_scalar(x: QTensor, other: float, scale: float, zero_point: int) -> QTensor:
    return _requantize_float(_float(x) * np.float32(other), x._device, scale, zero_point)


def cat(tensors, dim: int, scale: float, zero_point: int) -> QTensor:
    xp = tensors[0]._device.xp
    return _requantize_float(xp.concatenate([_float(t) for t in tensors], axis=dim), tensors[0]._device, scale,
                             zero_point)


# value-preserving QTensor methods: recorded like the Tensor methods they mirror
QTENSOR_METHODS = ("dequantize", "view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose",
                   "__getitem__", "clone", "contiguous", "detach", "relu")
_OPS = (linear, conv2d, max_pool2d, linear_dynamic, lstm_dynamic, gru_dynamic, add, mul, add_scalar, mul_scalar, cat)


def _register() -> None:
    namespace = globals()
    for fn in _OPS:
        namespace[fn.__name__] = registry.register(f"quantized.{fn.__name__}", fn).call
    for name in ("quantize_per_tensor", "quantize_per_channel", "dequantize"):
        entry = registry.register(f"engine.{name}", getattr(_q, name))
        setattr(_q, name, entry.call)
    for name in QTENSOR_METHODS:
        setattr(QTensor, name, registry.register(f"QTensor.{name}", vars(QTensor)[name]).call)


_register()
