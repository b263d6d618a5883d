"""``engine.cuda.FloatTensor`` and the other legacy CUDA tensor types, as ``torch.cuda``'s: ``FloatTensor([1, 2])``
or ``FloatTensor(2, 3)`` on the current CUDA device, and ``isinstance(t, engine.cuda.FloatTensor)``."""

from __future__ import annotations

from engine.legacy_tensor_types import _legacy

BFloat16Tensor = _legacy("BFloat16Tensor", "bfloat16", "cuda")
BoolTensor = _legacy("BoolTensor", "bool", "cuda")
ByteTensor = _legacy("ByteTensor", "uint8", "cuda")
CharTensor = _legacy("CharTensor", "int8", "cuda")
ShortTensor = _legacy("ShortTensor", "int16", "cuda")
IntTensor = _legacy("IntTensor", "int32", "cuda")
LongTensor = _legacy("LongTensor", "int64", "cuda")
HalfTensor = _legacy("HalfTensor", "float16", "cuda")
FloatTensor = _legacy("FloatTensor", "float32", "cuda")
DoubleTensor = _legacy("DoubleTensor", "float64", "cuda")
