"""Observers: modules that watch tensors during calibration and compute (scale, zero_point).

The arithmetic follows ``torch.ao.quantization.observer`` in float32, so the qparams are equal.
"""

from __future__ import annotations

import functools

import numpy as np

from engine.ao.quantization.qtensor import (
    per_channel_affine,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qrange,
)
from engine.dtypes import as_dtype, qint8, quint8
from engine.nn.modules.module import Module
from engine.tensor import Tensor, _make

_EPS = np.float32(np.finfo(np.float32).eps)


class _PartialWithRepr(functools.partial):
    def with_args(self, **kwargs):
        return _PartialWithRepr(self.func, *self.args, **{**self.keywords, **kwargs})


class ObserverBase(Module):
    """Base of observers: ``forward(x)`` records ``x`` and returns it; ``calculate_qparams()``."""

    def __init__(self, dtype=quint8, is_dynamic: bool = False):
        super().__init__()
        self.dtype = as_dtype(dtype)
        self.is_dynamic = is_dynamic

    @classmethod
    def with_args(cls, **kwargs):
        """A factory making this observer with ``kwargs`` (``MinMaxObserver.with_args(reduce_range=True)``)."""
        return _PartialWithRepr(cls, **kwargs)


class UniformQuantizationObserverBase(ObserverBase):
    """Holds the dtype, qscheme and quant range; turns min/max into qparams like PyTorch."""

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range: bool = False, quant_min=None,
                 quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic: bool = False, **kwargs):
        super().__init__(dtype, is_dynamic)
        if qscheme not in (per_tensor_affine, per_tensor_symmetric, per_channel_affine, per_channel_symmetric):
            raise NotImplementedError(f"{type(self).__name__}: qscheme {qscheme} is not supported")
        self.qscheme = qscheme
        self.reduce_range = reduce_range
        self.eps = np.float32(eps)
        lo, hi = (quant_min, quant_max) if quant_min is not None and quant_max is not None else qrange(self.dtype)
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        if reduce_range:
            if self.has_customized_qrange:
                lo, hi = lo // 2, hi // 2
            else:
                lo, hi = {quint8: (0, 127), qint8: (-64, 63)}.get(self.dtype, (lo, hi))
        self.quant_min, self.quant_max = int(lo), int(hi)

    def _symmetric(self) -> bool:
        return self.qscheme in (per_tensor_symmetric, per_channel_symmetric)

    def _calculate_qparams(self, min_val: np.ndarray, max_val: np.ndarray):
        qmin, qmax = self.quant_min, self.quant_max
        min_neg = np.minimum(min_val, np.float32(0)).astype(np.float32)
        max_pos = np.maximum(max_val, np.float32(0)).astype(np.float32)
        if self._symmetric():
            max_pos = np.maximum(-min_neg, max_pos)
            scale = np.maximum(max_pos / np.float32((qmax - qmin) / 2), self.eps).astype(np.float32)
            zp_value = (qmin + qmax) // 2 if self.has_customized_qrange else 128
            zero_point = np.full(scale.shape, zp_value if self.dtype is quint8 else 0, dtype=np.int64)
        else:
            scale = np.maximum((max_pos - min_neg) / np.float32(qmax - qmin), self.eps).astype(np.float32)
            zero_point = np.clip(qmin - np.rint(min_neg / scale).astype(np.int64), qmin, qmax)
        # NOTE: per-tensor qparams are 1-element tensors, as in PyTorch.
        scale = np.asarray(scale, np.float32).reshape(np.shape(min_val) or (1,))
        zero_point = np.asarray(zero_point, np.int64).reshape(np.shape(min_val) or (1,))
        return _make(scale, as_dtype("float32"), _cpu()), _make(zero_point, as_dtype("int64"), _cpu())


class MinMaxObserver(UniformQuantizationObserverBase):
    """Tracks the running min and max of every tensor seen (per tensor).

    Example:
        >>> obs = MinMaxObserver()
        >>> _ = obs(engine.tensor([-1.0, 3.0]))
        >>> obs.calculate_qparams()
        (tensor([0.0157]), tensor([64]))
    """

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range: bool = False, quant_min=None,
                 quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic: bool = False, **kwargs):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic)
        self.register_buffer("min_val", _make(np.array(np.inf, dtype=np.float32), as_dtype("float32"), _cpu()))
        self.register_buffer("max_val", _make(np.array(-np.inf, dtype=np.float32), as_dtype("float32"), _cpu()))

    def _update(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.min_val = _make(np.asarray(np.minimum(self.min_val.numpy(), lo), np.float32), as_dtype("float32"), _cpu())
        self.max_val = _make(np.asarray(np.maximum(self.max_val.numpy(), hi), np.float32), as_dtype("float32"), _cpu())

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = _host(x_orig)
        self._update(np.float32(x.min()), np.float32(x.max()))
        return x_orig

    def calculate_qparams(self):
        return self._calculate_qparams(self.min_val.numpy(), self.max_val.numpy())

    def reset_min_max_vals(self) -> None:
        self.min_val = _make(np.array(np.inf, dtype=np.float32), as_dtype("float32"), _cpu())
        self.max_val = _make(np.array(-np.inf, dtype=np.float32), as_dtype("float32"), _cpu())

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Min/max as exponential moving averages: v = v + c * (new - v)."""

    def __init__(self, averaging_constant: float = 0.01, dtype=quint8, qscheme=per_tensor_affine,
                 reduce_range: bool = False, quant_min=None, quant_max=None, eps=_EPS, is_dynamic: bool = False,
                 **kwargs):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, None, eps, is_dynamic)
        self.averaging_constant = averaging_constant

    def _update(self, lo, hi) -> None:
        cur_lo, cur_hi = self.min_val.numpy(), self.max_val.numpy()
        if np.isinf(cur_lo).all() and np.isinf(cur_hi).all():
            return super()._update(lo, hi)
        c = np.float32(self.averaging_constant)
        self.min_val = _make(np.asarray(cur_lo + c * (lo - cur_lo), np.float32), as_dtype("float32"), _cpu())
        self.max_val = _make(np.asarray(cur_hi + c * (hi - cur_hi), np.float32), as_dtype("float32"), _cpu())


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Tracks min and max per index of ``ch_axis`` (weights: one scale per output channel)."""

    def __init__(self, ch_axis: int = 0, dtype=quint8, qscheme=per_channel_affine, reduce_range: bool = False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic: bool = False, **kwargs):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", _make(np.zeros(0, np.float32), as_dtype("float32"), _cpu()))
        self.register_buffer("max_val", _make(np.zeros(0, np.float32), as_dtype("float32"), _cpu()))

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = np.moveaxis(_host(x_orig), self.ch_axis, 0).reshape(x_orig.shape[self.ch_axis], -1)
        lo, hi = x.min(axis=1).astype(np.float32), x.max(axis=1).astype(np.float32)
        if self.min_val.numel():
            lo, hi = np.minimum(self.min_val.numpy(), lo), np.maximum(self.max_val.numpy(), hi)
        self.min_val = _make(lo, as_dtype("float32"), _cpu())
        self.max_val = _make(hi, as_dtype("float32"), _cpu())
        return x_orig

    def calculate_qparams(self):
        return self._calculate_qparams(self.min_val.numpy(), self.max_val.numpy())


class PlaceholderObserver(ObserverBase):
    """Records nothing; carries the dtype (dynamic activations get their qparams at run time)."""

    def __init__(self, dtype=quint8, custom_op_name: str = "", compute_dtype=None, quant_min=None, quant_max=None,
                 qscheme=None, eps=None, is_dynamic: bool = False):
        super().__init__(dtype, is_dynamic)
        self.quant_min, self.quant_max, self.qscheme = quant_min, quant_max, qscheme

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise RuntimeError("calculate_qparams should not be called for PlaceholderObserver")


def _host(t: Tensor) -> np.ndarray:
    from engine import backend

    return backend.to_numpy(t.detach()._data).astype(np.float32, copy=False)


def _cpu():
    from engine.device import CPU

    return CPU


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_weight_observer = MinMaxObserver.with_args(dtype=qint8, qscheme=per_tensor_symmetric)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(dtype=qint8, qscheme=per_channel_symmetric)
default_dynamic_quant_observer = PlaceholderObserver.with_args(dtype=quint8, quant_min=0, quant_max=255,
                                                               is_dynamic=True)
