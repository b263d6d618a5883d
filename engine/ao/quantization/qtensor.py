"""Quantized tensors: an integer repr plus (scale, zero_point), per tensor or per channel.

``QTensor`` is a ``Tensor`` whose ``_data`` is the integer representation (int8 / uint8 / int32)
and whose dtype is ``engine.qint8`` / ``quint8`` / ``qint32``. Only value-preserving operations
(shape changes, copies, relu, max pooling) are defined on it; arithmetic raises and points to
``dequantize()``, as PyTorch's quantized CPU backend does for unsupported ops.
"""

from __future__ import annotations

import numpy as np

from engine.dtypes import as_dtype, qint8, qint32, quint8
from engine.tensor import Tensor, _init_slots, _make

_new = object.__new__
_RANGES = {qint8: (-128, 127), quint8: (0, 255), qint32: (-(2 ** 31), 2 ** 31 - 1)}


class qscheme:
    """A quantization scheme (``engine.per_tensor_affine`` ...), like ``torch.qscheme``."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"engine.{self.name}"

    def __reduce__(self):
        return (_qscheme_by_name, (self.name,))


per_tensor_affine = qscheme("per_tensor_affine")
per_channel_affine = qscheme("per_channel_affine")
per_tensor_symmetric = qscheme("per_tensor_symmetric")
per_channel_symmetric = qscheme("per_channel_symmetric")
per_channel_affine_float_qparams = qscheme("per_channel_affine_float_qparams")
_QSCHEMES = {q.name: q for q in (per_tensor_affine, per_channel_affine, per_tensor_symmetric,
                                 per_channel_symmetric, per_channel_affine_float_qparams)}


def _qscheme_by_name(name: str) -> qscheme:
    return _QSCHEMES[name]


def qrange(dtype) -> tuple[int, int]:
    """(quant_min, quant_max) of a quantized dtype."""
    try:
        return _RANGES[as_dtype(dtype)]
    except KeyError:
        raise TypeError(f"expected a quantized dtype (engine.qint8, engine.quint8, engine.qint32), got {dtype}") from None


def quantize_array(xp, x, scale, zero_point, dtype):
    """round-half-even(x / scale) + zero_point, clamped, as fbgemm computes it (bit-exact with torch).

    ``scale``/``zero_point`` are scalars or arrays broadcastable to ``x``.
    """
    lo, hi = qrange(dtype)
    x = x.astype(np.float32, copy=False)
    inv = (np.float32(1.0) / xp.asarray(scale, dtype=np.float32)).astype(np.float32)
    if dtype is qint32:
        # NOTE: the int32 path multiplies and adds in float32 (two roundings) ...
        t = x * inv + xp.asarray(zero_point, dtype=np.float32)
    else:
        # ... the int8 paths use a fused multiply-add (one rounding); float64 emulates it exactly.
        t = (x.astype(np.float64) * inv.astype(np.float64) + xp.asarray(zero_point, dtype=np.float64))
        t = t.astype(np.float32)
    return xp.clip(xp.rint(t), lo, hi).astype(dtype.np)


class QTensor(Tensor):
    """A quantized tensor; build one with ``engine.quantize_per_tensor`` / ``quantize_per_channel``.

    Example:
        >>> q = engine.quantize_per_tensor(engine.tensor([0.0, 0.26, -1.0]), 0.1, 10, engine.quint8)
        >>> q.int_repr(), q.dequantize()
        (tensor([10, 13,  0], dtype=engine.uint8), tensor([ 0.0000,  0.3000, -1.0000]))
    """

    __slots__ = ("_axis", "_packed", "_qscheme", "_scales", "_zero_points")
    is_quantized = True

    # ----- quantization parameters ---------------------------------------------------------
    def qscheme(self) -> qscheme:
        return self._qscheme

    def _per_tensor(self, what: str) -> None:
        if self._axis is not None:
            raise RuntimeError(f"Expected quantizer->qscheme() == kPerTensorAffine to be true for {what}, "
                               f"but got {self._qscheme.name}")

    def _per_channel(self, what: str) -> None:
        if self._axis is None:
            raise RuntimeError(f"Expected quantizer->qscheme() == kPerChannelAffine to be true for {what}, "
                               f"but got {self._qscheme.name}")

    def q_scale(self) -> float:
        self._per_tensor("q_scale")
        return float(self._scales)

    def q_zero_point(self) -> int:
        self._per_tensor("q_zero_point")
        return int(self._zero_points)

    def q_per_channel_scales(self) -> Tensor:
        self._per_channel("q_per_channel_scales")
        return _make(np.array(self._scales, dtype=np.float64), as_dtype("float64"), _cpu())

    def q_per_channel_zero_points(self) -> Tensor:
        self._per_channel("q_per_channel_zero_points")
        return _make(np.array(self._zero_points, dtype=np.int64), as_dtype("int64"), _cpu())

    def q_per_channel_axis(self) -> int:
        self._per_channel("q_per_channel_axis")
        return self._axis

    def int_repr(self) -> Tensor:
        """The stored integers as an ordinary int8 / uint8 / int32 tensor (a copy)."""
        data = self._data.copy()
        return _make(data, as_dtype(data.dtype.name), self._device)

    def _qparams_for(self, xp, ndim: int):
        if self._axis is None:
            return np.float32(self._scales), np.float32(self._zero_points)
        shape = [1] * ndim
        shape[self._axis] = -1
        # NOTE: per-channel dequantization multiplies by the double-precision scale, as torch does.
        scales = xp.asarray(np.asarray(self._scales, dtype=np.float64).reshape(shape))
        zps = xp.asarray(np.asarray(self._zero_points, dtype=np.float64).reshape(shape))
        return scales, zps

    def dequantize(self) -> Tensor:
        """(q - zero_point) * scale as float32."""
        xp = self._device.xp
        scale, zp = self._qparams_for(xp, self._data.ndim)
        data = ((self._data.astype(np.float32) - zp) * scale).astype(np.float32, copy=False)
        return _make(data, as_dtype("float32"), self._device)

    # ----- value-preserving operations ---------------------------------------------------------
    def _like(self, data, keep_axis: bool = True) -> QTensor:
        return _qtensor(data, self._dtype, self._device, self._qscheme, self._scales, self._zero_points,
                        self._axis if keep_axis else None)

    def reshape(self, *shape) -> QTensor:
        return self._like_tensor_op("reshape", *shape)

    def view(self, *shape) -> QTensor:
        return self._like_tensor_op("view", *shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> QTensor:
        return self._like_tensor_op("flatten", start_dim, end_dim)

    def squeeze(self, *dim) -> QTensor:
        return self._like_tensor_op("squeeze", *dim)

    def unsqueeze(self, dim: int) -> QTensor:
        return self._like_tensor_op("unsqueeze", dim)

    def permute(self, *dims) -> QTensor:
        return self._like_tensor_op("permute", *dims)

    def transpose(self, dim0: int, dim1: int) -> QTensor:
        return self._like_tensor_op("transpose", dim0, dim1)

    def __getitem__(self, index) -> QTensor:
        return self._like_tensor_op("__getitem__", index)

    def _like_tensor_op(self, name: str, *args) -> QTensor:
        if self._axis is not None:
            raise NotImplementedError(f"'{name}' on a per-channel quantized tensor is not supported; "
                                      "call .dequantize() first")
        plain = getattr(_make(self._data, as_dtype(self._data.dtype.name), self._device), name)(*args)
        return self._like(plain._data)

    def clone(self, *, memory_format=None) -> QTensor:
        return self._like(self._data.copy())

    def contiguous(self, memory_format=None) -> QTensor:
        return self if self._data.flags.c_contiguous else self._like(self._data.copy())

    def detach(self) -> QTensor:
        return self._like(self._data)

    def to(self, *args, **kwargs) -> QTensor:
        from engine.device import as_device

        device = kwargs.get("device", args[0] if args else None)
        if kwargs.get("dtype") is not None or (args and not isinstance(args[0], str) and
                                                 not hasattr(args[0], "type")):
            raise NotImplementedError("a quantized tensor changes dtype only through dequantize()")
        if device is None:
            return self
        from engine import backend

        device = as_device(device)
        return _qtensor(backend.to_device_array(self._data, device), self._dtype, device, self._qscheme,
                        self._scales, self._zero_points, self._axis)

    def cpu(self) -> QTensor:
        return self.to("cpu")

    def cuda(self, device=None, non_blocking: bool = False) -> QTensor:
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def relu(self) -> QTensor:
        """max(q, zero_point): the quantized value of 0 is the zero point."""
        if self._axis is not None:
            raise NotImplementedError("relu on a per-channel quantized tensor is not supported")
        xp = self._device.xp
        return self._like(xp.maximum(self._data, self._data.dtype.type(self._zero_points)))

    def __repr__(self) -> str:
        from engine.tensor_repr import tensor_repr

        body = tensor_repr(self.dequantize())[:-1]
        if self._axis is None:
            q = f"scale={self._scales}, zero_point={self._zero_points}"
        else:
            q = f"scales={self.q_per_channel_scales()!r}, zero_points={self.q_per_channel_zero_points()!r}, " \
                f"axis={self._axis}"
        return f"{body}, size={tuple(self.shape)}, dtype={self._dtype}, quantization_scheme={self._qscheme}, {q})"

    def __reduce_ex__(self, protocol):
        from engine import backend

        return (_rebuild_q, (backend.to_numpy(self._data), self._dtype.name, self._qscheme.name, self._scales,
                             self._zero_points, self._axis))

    def __deepcopy__(self, memo):
        out = self._like(self._data.copy())
        memo[id(self)] = out
        return out


def _unsupported(name: str):
    def method(self, *args, **kwargs):
        raise NotImplementedError(f"'{name}' is not supported for quantized tensors ({self._dtype}); "
                                  "call .dequantize() first, or use a quantized module (engine.ao.nn.quantized)")
    method.__name__ = name
    return method


# NOTE: float ops would read the integer repr as values; refuse them instead of computing nonsense.
for _name in ("add", "sub", "mul", "div", "matmul", "mm", "sum", "mean", "exp", "log", "tanh", "sigmoid",
              "softmax", "log_softmax", "pow", "neg", "abs", "clamp", "max", "min", "argmax", "argmin", "backward",
              "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__matmul__", "__neg__", "__pow__", "add_", "mul_", "sub_", "div_", "copy_", "fill_", "zero_",
              "float", "double", "half", "numpy", "tolist", "item"):
    setattr(QTensor, _name, _unsupported(_name))


def _cpu():
    from engine.device import CPU

    return CPU


def _qtensor(data, dtype, device, scheme, scales, zero_points, axis) -> QTensor:
    t = _new(QTensor)
    _init_slots(t)
    t._data = data
    t._dtype = dtype
    t._device = device
    t._qscheme = scheme
    t._scales = scales
    t._zero_points = zero_points
    t._axis = axis
    t._packed = None  # the GEMM-ready weight of the quantized modules (engine.ao.nn.quantized.kernels)
    return t


def _rebuild_q(array, dtype_name, scheme, scales, zero_points, axis):
    return _qtensor(np.array(array), as_dtype(dtype_name), _cpu(), _QSCHEMES[scheme], scales, zero_points, axis)


def qtensor_from_meta(array, meta: dict) -> QTensor:
    """Rebuild a quantized tensor that engine.save stored as its int repr plus ``meta``."""
    try:
        dtype = as_dtype(meta["dtype"])
        scheme = _QSCHEMES[meta["qscheme"]]
        axis = meta["axis"]
        scales, zero_points = meta["scales"], meta["zero_points"]
    except (KeyError, TypeError):
        raise ValueError(f"corrupt engine.save file: bad quantized tensor entry {meta!r}") from None
    if dtype not in _RANGES or array.dtype != dtype.np:
        raise ValueError(f"corrupt engine.save file: quantized dtype {meta['dtype']} over {array.dtype} data")
    if axis is None:
        scales, zero_points = float(scales), int(zero_points)
    else:
        scales, zero_points = [float(s) for s in scales], [int(z) for z in zero_points]
    return _qtensor(np.array(array), dtype, _cpu(), scheme, scales, zero_points, None if axis is None else int(axis))


def _float_input(input, op: str):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.is_quantized or not input._dtype.is_floating_point:
        raise RuntimeError(f"{op}(): expected a float tensor, got {input._dtype}")
    return input.detach()._data


def _scalar(value):
    return value.item() if isinstance(value, Tensor) else value


def quantize_per_tensor(input, scale, zero_point, dtype) -> QTensor:
    """Quantize a float tensor with one (scale, zero_point): clamp(round(x / scale) + zero_point).

    Args:
        input: float tensor. scale: float (or 1-element tensor). zero_point: int. dtype: engine.qint8,
            engine.quint8 or engine.qint32.
    """
    dtype = as_dtype(dtype)
    lo, hi = qrange(dtype)
    data = _float_input(input, "quantize_per_tensor")
    scale, zero_point = float(_scalar(scale)), int(_scalar(zero_point))
    if not lo <= zero_point <= hi:
        raise RuntimeError(f"quantize_per_tensor: zero_point {zero_point} is outside [{lo}, {hi}] of {dtype}")
    if not scale > 0:
        raise RuntimeError(f"quantize_per_tensor: scale must be positive, got {scale}")
    q = quantize_array(input._device.xp, data, scale, zero_point, dtype)
    return _qtensor(q, dtype, input._device, per_tensor_affine, scale, zero_point, None)


def quantize_per_channel(input, scales, zero_points, axis: int, dtype) -> QTensor:
    """Quantize a float tensor with one (scale, zero_point) per index along ``axis``.

    Args:
        input: float tensor. scales: 1-d float tensor. zero_points: 1-d int tensor. axis: the channel
            dimension. dtype: engine.qint8, engine.quint8 or engine.qint32.
    """
    dtype = as_dtype(dtype)
    data = _float_input(input, "quantize_per_channel")
    axis = axis + data.ndim if axis < 0 else axis
    scale_list = [float(s) for s in np.asarray(scales).reshape(-1)]
    zp_list = [int(z) for z in np.asarray(zero_points).reshape(-1)]
    if not 0 <= axis < data.ndim or len(scale_list) != data.shape[axis] or len(zp_list) != data.shape[axis]:
        raise RuntimeError(f"quantize_per_channel: expected {data.shape[axis] if 0 <= axis < data.ndim else '?'} "
                           f"scales and zero_points along axis {axis}, got {len(scale_list)} and {len(zp_list)}")
    shape = [1] * data.ndim
    shape[axis] = -1
    xp = input._device.xp
    s = xp.asarray(np.asarray(scale_list, dtype=np.float32).reshape(shape))
    z = xp.asarray(np.asarray(zp_list, dtype=np.float32).reshape(shape))
    q = quantize_array(xp, data, s, z, dtype)
    return _qtensor(q, dtype, input._device, per_channel_affine, scale_list, zp_list, axis)


def dequantize(input) -> Tensor:
    """``engine.dequantize(q)``: the float value of a quantized tensor (a float tensor is returned as is)."""
    return input.dequantize()
