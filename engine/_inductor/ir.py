"""The lowered program: SSA values over raw arrays (no Tensor, no autograd), built from an fx graph.

A ``Value`` is one of:

- ``input`` (a placeholder's array), ``param`` (a parameter, buffer or constant of the module: its
  ``_data`` is read at every call, so optimizer updates are seen);
- ``pointwise`` (``op`` names an entry of ``engine._inductor.pointwise.OPS``; ``args`` are values or
  Python numbers; the result has the broadcast shape of its array arguments);
- ``reduce`` (``sum``/``max``/``min`` over ``axes``, keeping them as size-1 dims when ``keepdim``);
- ``view`` (a NumPy view function of one array: reshape, transpose, slicing, broadcasting);
- ``extern`` (an array kernel of ``engine._inductor.kernels``, writing into a planned ``out=`` buffer
  when ``out`` is set);
- ``fallback`` (an op the backend does not lower: its eager kernel runs on tensors wrapping the arrays);
- ``item`` (element ``index`` of a fallback's tuple result);
- ``grad`` (the live ``.grad`` of a leaf, ``graph_ops.read_grad``: its tensor when returned, its array
  for the ops that read it);
- ``effect`` (inline code with a side effect and no array result: ``op`` is ``"deliver_grads"``
  (accumulate gradients into the leaves' ``.grad``), ``"clear_grad"`` (``leaf.grad = None``) or
  ``"optimizer_step"`` (a fused optimizer step, ``engine._inductor.optim``)).

Shapes are static: a program is built for one set of input shapes (a new shape builds a new one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class Value:
    kind: str
    shape: tuple
    dtype: Any  # a NumPy dtype (None for non-array results of a fallback)
    op: Any = None
    args: tuple = ()
    attrs: dict = field(default_factory=dict)
    name: str = ""
    users: list = field(default_factory=list)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def is_array(self) -> bool:
        return self.dtype is not None and self.kind != "object"

    def __repr__(self) -> str:
        return f"{self.name}:{self.kind}[{self.op if isinstance(self.op, str) else getattr(self.op, '__name__', '')}]"


class Unsupported(Exception):
    """A lowering cannot handle these arguments: the node runs through its eager kernel instead."""


class Program:
    """Values in execution order, plus the inputs, parameters and output structure."""

    def __init__(self):
        self.values: list[Value] = []
        self.inputs: list[Value] = []
        self.params: list[Value] = []
        self.output: Any = None
        self._count = 0

    def add(self, v: Value) -> Value:
        v.name = f"{v.kind[:3]}{self._count}" if v.kind != "input" else f"arg{len(self.inputs)}"
        self._count += 1
        self.values.append(v)
        for a in v.args:
            if isinstance(a, Value) and v not in a.users:
                a.users.append(v)
        for a in v.attrs.get("extra_inputs", ()):
            if v not in a.users:
                a.users.append(v)
        return v

    def inputs_of(self, v: Value) -> list[Value]:
        found = [a for a in v.args if isinstance(a, Value)]
        found += list(v.attrs.get("extra_inputs", ()))
        return found


def broadcast_shapes(*shapes) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as exc:
        raise Unsupported(str(exc)) from None


def view_shape(fn, shape: tuple, *params) -> tuple:
    """The shape ``fn(array, *params)`` gives, computed on a zero-strided dummy (no data touched)."""
    dummy = np.lib.stride_tricks.as_strided(np.zeros(1, np.int8), shape, (0,) * len(shape))
    try:
        return tuple(fn(dummy, *params).shape)
    except (ValueError, IndexError, TypeError) as exc:
        raise Unsupported(str(exc)) from None


def map_values(a, fn):
    """Apply ``fn`` to every Value inside nested tuples/lists/dicts/slices, rebuilding the containers."""
    if isinstance(a, Value):
        return fn(a)
    if isinstance(a, tuple):
        return tuple(map_values(v, fn) for v in a)
    if isinstance(a, list):
        return [map_values(v, fn) for v in a]
    if isinstance(a, dict):
        return {k: map_values(v, fn) for k, v in a.items()}
    if isinstance(a, slice):
        return slice(map_values(a.start, fn), map_values(a.stop, fn), map_values(a.step, fn))
    return a
