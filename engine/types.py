"""``engine.types`` (``torch.types``): the type aliases PyTorch's signatures use."""

from __future__ import annotations

from typing import Union

from engine.device import device as _device
from engine.dtypes import dtype as _dtype

Number = Union[int, float, bool]  # noqa: UP007 - a runtime alias, as in torch.types
Device = Union[_device, str, int, None]  # noqa: UP007
_dtype_alias = _dtype
_size = tuple
__all__ = ["Device", "Number"]
