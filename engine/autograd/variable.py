"""``Variable``: PyTorch's pre-0.4 wrapper, now the tensor itself (as ``torch.autograd.variable``).

``Variable(t, requires_grad=True)`` returns a leaf tensor sharing ``t``'s data; every tensor is a ``Variable``.
"""

from __future__ import annotations

from engine.tensor import Tensor

__all__ = ["Variable"]


class _VariableMeta(type):
    def __instancecheck__(cls, other) -> bool:
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """Calling it gives a tensor (``data`` detached, with ``requires_grad`` set); it is never instantiated."""

    def __new__(cls, data=None, requires_grad: bool = False, volatile: bool = False):
        if data is None:
            from engine.creation import empty

            return empty(0).requires_grad_(requires_grad)
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if volatile:
            import warnings

            warnings.warn("volatile was removed and now has no effect. Use `with torch.no_grad():` instead.",
                          stacklevel=2)
        return data.detach().requires_grad_(requires_grad)
