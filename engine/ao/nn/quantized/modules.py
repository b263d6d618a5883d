"""Statically quantized modules (``engine.ao.nn.quantized``): quint8 activations, qint8 weights.

Each module keeps its int8 weight as a ``QTensor`` (``weight()``), its float bias (``bias()``) and its
output ``scale`` / ``zero_point``: everything a later QDQ lowering needs.
"""

from __future__ import annotations

import numpy as np

from engine import nn
from engine.ao.nn.quantized import ops as qops
from engine.ao.quantization.qtensor import QTensor, quantize_per_tensor
from engine.dtypes import as_dtype, quint8
from engine.tensor import Tensor, _make


def _need_quantized(x, module: nn.Module):
    if not isinstance(x, QTensor):
        raise RuntimeError(f"{type(module).__module__}.{type(module).__name__} expects a quantized input "
                           "(engine.quint8); put a QuantStub before it (or call engine.quantize_per_tensor)")
    if x._axis is not None or x._dtype is not quint8:
        raise NotImplementedError(f"{type(module).__name__}: only per-tensor quint8 inputs are supported")
    return x


def _scalar_tensor(value, dtype: str) -> Tensor:
    from engine.device import CPU

    return _make(np.array(value, dtype=as_dtype(dtype).np), as_dtype(dtype), CPU)


def quantize_weight(weight: Tensor, observer) -> QTensor:
    """Quantize a float weight with an observer's qparams (per tensor or per channel, as observed)."""
    from engine.ao.quantization.qtensor import per_channel_affine, per_channel_symmetric, quantize_per_channel

    observer(weight)
    scale, zero_point = observer.calculate_qparams()
    if observer.qscheme in (per_channel_affine, per_channel_symmetric):
        return quantize_per_channel(weight.detach().float(), scale, zero_point, observer.ch_axis, observer.dtype)
    return quantize_per_tensor(weight.detach().float(), float(scale.item()), int(zero_point.item()), observer.dtype)


class _PackedWeight(nn.Module):
    """An int8 weight and a float bias held outside the parameters, with torch's accessors (static and dynamic)."""

    _weight: QTensor
    _bias: Tensor | None

    def weight(self) -> QTensor:
        return self._weight

    def _apply(self, fn, recurse: bool = True):
        self._weight = fn(self._weight)
        self._bias = None if self._bias is None else fn(self._bias)
        return super()._apply(fn, recurse)

    def bias(self):
        return self._bias

    def set_weight_bias(self, w: QTensor, b) -> None:
        self._weight, self._bias = w, b


class _WeightedQuantized(_PackedWeight):
    """State shared by quantized Linear / Conv2d: int8 weight, float bias, output qparams."""

    _FLOAT = "weight"

    def _set_state(self, w_q: QTensor, bias, scale: float, zero_point: int) -> None:
        self._weight = w_q
        self._bias = None if bias is None else bias.detach().float()
        self.scale, self.zero_point = float(scale), int(zero_point)

    def _get_name(self) -> str:
        return "Quantized" + type(self).__name__


    def _save_to_state_dict(self, destination, prefix, keep_vars):
        destination[prefix + "weight"] = self._weight
        if self._bias is not None:
            destination[prefix + "bias"] = self._bias
        destination[prefix + "scale"] = _scalar_tensor(self.scale, "float64")
        destination[prefix + "zero_point"] = _scalar_tensor(self.zero_point, "int64")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs, assign=False):
        keys = ["weight", "scale", "zero_point"] + (["bias"] if self._bias is not None else [])
        for key in keys:
            if prefix + key not in state_dict:
                missing_keys.append(prefix + key)
        if any(prefix + k not in state_dict for k in keys):
            return
        w = state_dict[prefix + "weight"]
        if not isinstance(w, QTensor) or tuple(w.shape) != tuple(self._weight.shape):
            error_msgs.append(f"{prefix}weight: expected a quantized tensor of shape {tuple(self._weight.shape)}")
            return
        self._weight = w
        self._bias = state_dict.get(prefix + "bias")
        self.scale = float(state_dict[prefix + "scale"].item())
        self.zero_point = int(state_dict[prefix + "zero_point"].item())
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key[len(prefix):] not in ("weight", "bias", "scale", "zero_point") \
                        and "." not in key[len(prefix):]:
                    unexpected_keys.append(key)


class Linear(_WeightedQuantized):
    """Quantized Linear: quint8 in, qint8 weight, int32 accumulation, quint8 out (``scale``, ``zero_point``)."""

    _relu = False

    def __init__(self, in_features: int, out_features: int, bias_: bool = True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        from engine import zeros

        w = quantize_per_tensor(zeros(out_features, in_features), 1.0, 0, as_dtype("qint8"))
        self._set_state(w, zeros(out_features) if bias_ else None, 1.0, 0)

    def forward(self, x):
        return qops.linear(_need_quantized(x, self), self._weight, self._bias, self.scale, self.zero_point, self._relu)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        linear = mod[0] if isinstance(mod, nn.Sequential) else mod
        observer = mod.activation_post_process
        w_q = quantize_weight(linear.weight, mod.qconfig.weight())
        scale, zero_point = observer.calculate_qparams()
        q = cls(linear.in_features, linear.out_features, linear.bias is not None)
        q._set_state(w_q, linear.bias, float(scale.item()), int(zero_point.item()))
        return q

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, scale={self.scale}, "
                f"zero_point={self.zero_point}, qscheme={self._weight.qscheme()}")


class LinearReLU(Linear):
    """Quantized Linear followed by ReLU (fused: the output clamps at the zero point)."""

    _relu = True


class Conv2d(_WeightedQuantized):
    """Quantized 2-d convolution (zeros padding), int32 accumulation, per-channel or per-tensor weight."""

    _relu = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        def as_pair(v):
            return tuple(v) if isinstance(v, tuple | list) else (v, v)

        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = as_pair(kernel_size), as_pair(stride)
        self.padding, self.dilation = as_pair(padding), as_pair(dilation)
        self.groups, self.padding_mode = groups, padding_mode
        if groups != 1 or padding_mode != "zeros" or isinstance(padding, str):
            raise NotImplementedError("quantized Conv2d supports groups=1, numeric padding and padding_mode='zeros'")
        from engine import zeros

        w = quantize_per_tensor(zeros(out_channels, in_channels, *self.kernel_size), 1.0, 0, as_dtype("qint8"))
        self._set_state(w, zeros(out_channels) if bias else None, 1.0, 0)

    def forward(self, x):
        x = _need_quantized(x, self)
        if x.dim() != 4:
            raise ValueError(f"Input shape must be `(N, C, H, W)`! Got {tuple(x.shape)}")
        return qops.conv2d(x, self._weight, self._bias, self.stride, self.padding, self.dilation, self.scale,
                           self.zero_point, self._relu)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        conv = mod[0] if isinstance(mod, nn.Sequential) else mod
        if getattr(conv, "padding_mode", "zeros") != "zeros" or conv.groups != 1 or isinstance(conv.padding, str):
            raise NotImplementedError(f"convert: {type(conv).__name__} with groups={conv.groups}, "
                                      f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r} has no "
                                      "quantized form (groups=1, numeric zeros padding only)")
        w_q = quantize_weight(conv.weight, mod.qconfig.weight())
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.bias is not None)
        q._set_state(w_q, conv.bias, float(scale.item()), int(zero_point.item()))
        return q

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"scale={self.scale}, zero_point={self.zero_point}, padding={self.padding}")


class ConvReLU2d(Conv2d):
    """Quantized Conv2d followed by ReLU (fused)."""

    _relu = True


class ReLU(nn.ReLU):
    """ReLU on a quantized tensor (max with the zero point; the qparams stay); float input as nn.ReLU."""

    def forward(self, input):
        return input.relu() if isinstance(input, QTensor) else super().forward(input)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        return cls(getattr(mod, "inplace", False))


class MaxPool2d(nn.MaxPool2d):
    """Max pooling on a quantized tensor (the max of the integers is the integer of the max)."""

    def forward(self, input):
        if not isinstance(input, QTensor):
            return super().forward(input)
        return qops.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        return cls(mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.return_indices, mod.ceil_mode)


class Quantize(nn.Module):
    """What a QuantStub becomes: quantize_per_tensor with the calibrated (scale, zero_point)."""

    def __init__(self, scale: float, zero_point: int, dtype, factory_kwargs=None):
        super().__init__()
        self.scale, self.zero_point, self.dtype = float(scale), int(zero_point), as_dtype(dtype)

    def forward(self, X):
        return quantize_per_tensor(X, self.scale, self.zero_point, self.dtype)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        scale, zero_point = mod.activation_post_process.calculate_qparams()
        return cls(float(scale.item()), int(zero_point.item()), mod.activation_post_process.dtype)

    def extra_repr(self) -> str:
        return f"scale=tensor([{self.scale}]), zero_point=tensor([{self.zero_point}]), dtype={self.dtype}"


class DeQuantize(nn.Module):
    """What a DeQuantStub becomes: ``x.dequantize()``."""

    def forward(self, Xq):
        return Xq.dequantize()

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        return cls()
