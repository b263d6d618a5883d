"""PyTorch's legacy CPU tensor types ``BoolTensor``, ``ByteTensor``, ``CharTensor``, ``ShortTensor``,
``IntTensor``, ``LongTensor``, ``FloatTensor``, ``DoubleTensor``: ``IntTensor([1, 2])`` (data) or ``IntTensor(2, 3)`` (an uninitialised tensor) in that dtype,
and ``isinstance(t, IntTensor)`` for a CPU int32 tensor."""

from __future__ import annotations

from engine import creation
from engine.dtypes import as_dtype
from engine.tensor import Tensor


class _LegacyType(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj._dtype is cls.dtype and obj._device.type == cls.device_type

    def __call__(cls, *args, device=None):
        device = cls.device_type if device is None and cls.device_type != "cpu" else device
        if len(args) == 1 and isinstance(args[0], Tensor):
            return args[0].to(cls.dtype) if device is None else args[0].to(device, cls.dtype)
        if len(args) == 1 and not isinstance(args[0], int):
            return creation.tensor(args[0], dtype=cls.dtype, device=device)
        return creation.empty(*args, dtype=cls.dtype, device=device)


def _legacy(name: str, dtype_name: str, device_type: str = "cpu"):
    """The legacy type ``name`` of ``dtype_name`` tensors on ``device_type`` (``engine.cuda.FloatTensor``: "cuda")."""
    return _LegacyType(name, (), {"dtype": as_dtype(dtype_name), "device_type": device_type,
                                  "__doc__": f"{device_type.upper()} {dtype_name} tensors."})


BoolTensor = _legacy("BoolTensor", "bool")
ByteTensor = _legacy("ByteTensor", "uint8")
CharTensor = _legacy("CharTensor", "int8")
ShortTensor = _legacy("ShortTensor", "int16")
IntTensor = _legacy("IntTensor", "int32")
LongTensor = _legacy("LongTensor", "int64")
FloatTensor = _legacy("FloatTensor", "float32")
DoubleTensor = _legacy("DoubleTensor", "float64")
