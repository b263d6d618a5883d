"""Dynamically quantized modules: int8 weights, activations quantized per call (fbgemm's scheme).

Float in, float out. The activation gets its quint8 (scale, zero_point) from each batch's min/max
(7 bits with ``reduce_range`` under the x86 / fbgemm engine, 8 under qnnpack / onednn:
``engine.backends.quantized.engine``), the product accumulates as int32, then ``acc * sx * sw + bias``.
"""

from __future__ import annotations

import numpy as np

from engine import nn
from engine.ao.nn.quantized import ops as qops
from engine.ao.nn.quantized.modules import _PackedWeight, quantize_weight
from engine.ao.quantization.qtensor import QTensor
from engine.backends.quantized import reduce_range
from engine.dtypes import as_dtype
from engine.tensor import Tensor


def _float(x: Tensor, module) -> np.ndarray:
    if isinstance(x, QTensor) or not x._dtype.is_floating_point:
        raise RuntimeError(f"{type(module).__name__} (dynamic quantized) expects a float input, got {x._dtype}")
    return x.detach()._data.astype(np.float32, copy=False)


class Linear(_PackedWeight):
    """Dynamic quantized Linear (``torch.ao.nn.quantized.dynamic.Linear``): float in, float out.

    Example:
        >>> qlinear = Linear.from_float(float_linear_with_qconfig)  # doctest: +SKIP
    """

    def __init__(self, in_features: int, out_features: int, bias_: bool = True, dtype=None):
        super().__init__()
        from engine import quantize_per_tensor, zeros

        self.in_features, self.out_features = in_features, out_features
        self._weight = quantize_per_tensor(zeros(out_features, in_features), 1.0, 0, as_dtype("qint8"))
        self._bias = zeros(out_features) if bias_ else None
        self.version = 4

    def _get_name(self) -> str:
        return "DynamicQuantizedLinear"


    def forward(self, x):
        _float(x, self)
        return qops.linear_dynamic(x, self._weight, self._bias, reduce_range())

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        qconfig = getattr(mod, "qconfig", None)
        from engine.ao.quantization.qconfig import default_dynamic_qconfig

        observer = (qconfig or default_dynamic_qconfig).weight()
        if observer.dtype is not as_dtype("qint8"):
            raise NotImplementedError(f"dynamic Linear supports qint8 weights, got {observer.dtype}")
        q = cls(mod.in_features, mod.out_features, mod.bias is not None)
        q.set_weight_bias(quantize_weight(mod.weight, observer), None if mod.bias is None else mod.bias.detach().float())
        return q

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        destination[prefix + "weight"] = self._weight
        if self._bias is not None:
            destination[prefix + "bias"] = self._bias

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs, assign=False):
        _load_weights(self, state_dict, prefix, [("_weight", "weight"), ("_bias", "bias")], missing_keys, error_msgs)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, dtype=engine.qint8, "
                f"qscheme={self._weight.qscheme()}")


def _load_weights(module, state_dict, prefix, pairs, missing_keys, error_msgs) -> None:
    for attr, key in pairs:
        current = getattr(module, attr)
        if current is None:
            continue
        if prefix + key not in state_dict:
            missing_keys.append(prefix + key)
            continue
        value = state_dict[prefix + key]
        if tuple(value.shape) != tuple(current.shape) or value.is_quantized != current.is_quantized:
            error_msgs.append(f"size or type mismatch for {prefix + key}: expected {tuple(current.shape)} "
                              f"{current.dtype}, got {tuple(value.shape)} {value.dtype}")
            continue
        setattr(module, attr, value)


class _RNNBase(nn.Module):
    """Shared state of dynamic LSTM / GRU: one quantized (w_ih, w_hh) and float biases per layer/direction."""

    _float_class = nn.LSTM
    _gates = 4

    def __init__(self, mod):
        super().__init__()
        for name in ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                     "bidirectional", "proj_size"):
            setattr(self, name, getattr(mod, name))
        self.version = 2
        observer_factory = _weight_factory(mod)
        self._names = list(mod._flat_weights_names)
        self._packed: dict[str, Tensor] = {}
        for name in self._names:
            param = getattr(mod, name)
            self._packed[name] = quantize_weight(param, observer_factory()) if name.startswith("weight") \
                else param.detach().float()
        # the float forward's loops and shape checks are reused: only the products change
        impl = type(mod).__new__(type(mod))
        nn.Module.__init__(impl)
        object.__setattr__(self, "_impl", impl)  # not a child module: it holds no state
        for name in ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                     "bidirectional", "proj_size", "_flat_weights_names"):
            object.__setattr__(self._impl, name, getattr(mod, name))
        self._impl.training = False
        object.__setattr__(self._impl, "_run", self._run)

    def _run(self, input, hx):
        """The float module's contract (engine.nn.modules.rnn): (output, h_n) or (output, (h_n, c_n))."""
        params = [self._packed[name] for name in self._names]
        if isinstance(hx, tuple):
            out, h_n, c_n = qops.lstm_dynamic(input, hx, params, self.bias, self.num_layers, self.bidirectional,
                                              reduce_range())
            return out, (h_n, c_n)
        return qops.gru_dynamic(input, hx, params, self.bias, self.num_layers, self.bidirectional, reduce_range())

    def forward(self, input, hx=None):
        _float(input, self)
        return self._float_class.forward(self._impl, input, hx)

    def _get_name(self) -> str:
        return "DynamicQuantized" + type(self).__name__

    def _apply(self, fn, recurse: bool = True):
        self._packed = {name: fn(t) for name, t in self._packed.items()}
        return super()._apply(fn, recurse)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name in self._names:
            destination[prefix + name] = self._packed[name]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs, assign=False):
        holder = type("_Holder", (), {})()
        for name in self._names:
            setattr(holder, name, self._packed[name])
        _load_weights(holder, state_dict, prefix, [(n, n) for n in self._names], missing_keys, error_msgs)
        self._packed = {name: getattr(holder, name) for name in self._names}

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        if not isinstance(mod, cls._float_class):
            raise TypeError(f"{cls.__name__}.from_float expects nn.{cls._float_class.__name__}, got {type(mod).__name__}")
        return cls(mod)

    def extra_repr(self) -> str:
        return nn.LSTM.extra_repr(self) + ", dtype=engine.qint8"


def _weight_factory(mod):
    from engine.ao.quantization.qconfig import default_dynamic_qconfig

    qconfig = getattr(mod, "qconfig", None) or default_dynamic_qconfig
    return qconfig.weight


class LSTM(_RNNBase):
    """Dynamic quantized LSTM (``torch.ao.nn.quantized.dynamic.LSTM``): forward returns (output, (h_n, c_n))."""

    _float_class = nn.LSTM


class GRU(_RNNBase):
    """Dynamic quantized GRU (``torch.ao.nn.quantized.dynamic.GRU``): forward returns (output, h_n)."""

    _float_class = nn.GRU
