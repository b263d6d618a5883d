"""Guards: what must hold for a captured graph to be replayed instead of captured again.

The cheap part is a key computed from the call's arguments (tensor shapes, dtypes, devices,
requires_grad, aliasing, plain values) and the global state (grad mode, autocast), looked up in a
dict; the rest is checked per entry (training flags of the modules the capture ran, the identity
and requires_grad of the parameters it read, the optimizers it stepped).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.amp import autocast_state
from engine.autograd.grad_mode import state as grad_state
from engine.device import device as _device
from engine.dtypes import dtype as _dtype
from engine.tensor import Tensor

_PLAIN = (int, float, bool, str, bytes, type(None), complex, _dtype, _device)


@dataclass(frozen=True)
class Guard:
    """One condition of a cache entry (as ``torch._guards.Guard``, printed by ``explain``)."""

    name: str
    source: str
    guard_type: str
    value: object = None

    def __str__(self) -> str:
        return f"Name: {self.name!r}\n    Source: {self.source}\n    Guard Type: {self.guard_type}\n" \
               f"    Value: {self.value!r}\n"


def call_key(args: tuple, kwargs: dict, leaves: list, dynamic: bool) -> tuple:
    """The guard key of a call, filling ``leaves`` with its tensors in order."""
    key: list = [grad_state.enabled, autocast_state.active]
    for a in args:
        if isinstance(a, Tensor):  # NOTE: the common case, kept inline (this runs on every call)
            leaves.append(a)
            key.append((a._data.ndim if dynamic else a._data.shape, a._dtype, a._device, a._requires_grad))
        else:
            _walk(a, key, leaves, dynamic)
    if kwargs:
        key.append(tuple(kwargs))
        _walk(tuple(kwargs.values()), key, leaves, dynamic)
    if len(leaves) > 1 and len({id(t) for t in leaves}) != len(leaves):
        # the same tensor twice: the graph reads one placeholder for both
        first: dict[int, int] = {}
        key.append(tuple(first.setdefault(id(t), i) for i, t in enumerate(leaves)))
    return tuple(key)


def _walk(value, key: list, leaves: list, dynamic: bool) -> None:
    if isinstance(value, Tensor):
        leaves.append(value)
        key.append((value._data.ndim if dynamic else value._data.shape, value._dtype, value._device,
                    value._requires_grad))
    elif isinstance(value, tuple | list):
        key.append((type(value), len(value)))
        for v in value:
            _walk(v, key, leaves, dynamic)
    elif isinstance(value, dict):
        key.append((type(value), tuple(value)))
        for v in value.values():
            _walk(v, key, leaves, dynamic)
    elif isinstance(value, _PLAIN):
        key.append((type(value), value))
    else:  # any other object (a module, an optimizer): guarded by identity
        key.append(("id", id(value)))


def describe(key: tuple, names: list[str], dynamic: bool) -> list[Guard]:
    """Readable guards for a key (for ``explain``)."""
    guards = [Guard("grad_mode", "GLOBAL", "GRAD_MODE", key[0]),
              Guard("autocast", "GLOBAL", "AUTOCAST", key[1])]
    tensors = [k for k in key[2:] if isinstance(k, tuple) and len(k) == 4 and isinstance(k[1], _dtype)]
    for name, (shape, dtype, device, requires_grad) in zip(names, tensors, strict=False):
        guards.append(Guard(name, "LOCAL", "TENSOR_MATCH",
                            {"shape" if not dynamic else "ndim": shape, "dtype": str(dtype), "device": str(device),
                             "requires_grad": requires_grad}))
    return guards


class StateGuard:
    """Training flags, parameter identity/requires_grad of what a capture read (checked per entry)."""

    __slots__ = ("flags", "hooks", "modules", "slots", "tensors")

    def __init__(self, modules: list, tensors: list):
        self.modules = modules
        self.flags = tuple(m.training for m in modules)
        self.hooks = [(m._forward_pre_hooks, len(m._forward_pre_hooks), m._forward_hooks, len(m._forward_hooks))
                      for m in modules]
        self.slots = []
        for m in modules:
            for table in (m._parameters, m._buffers, m._modules):
                for k, v in table.items():
                    self.slots.append((table, k, v))
        self.tensors = [(t, t._requires_grad) for t in tensors]

    def check(self) -> bool:
        for m, flag in zip(self.modules, self.flags):  # noqa: B905 - built together
            if m.training != flag:
                return False
        for pre, n_pre, post, n_post in self.hooks:  # a hook added or removed changes what runs
            if len(pre) != n_pre or len(post) != n_post:
                return False
        for table, k, v in self.slots:
            if table.get(k) is not v:
                return False
        for t, flag in self.tensors:
            if t._requires_grad is not flag:
                return False
        return True

    def describe(self) -> list[Guard]:
        out = [Guard(f"{type(m).__name__}.training", "GLOBAL", "ATTR_MATCH", flag)
               for m, flag in zip(self.modules, self.flags)]  # noqa: B905
        if self.slots:
            out.append(Guard("module attributes", "GLOBAL", "ID_MATCH", len(self.slots)))
        return out
