"""The compiled compat mode: every top-level module call of a script goes through ``engine.compile``.

The launcher of the ``engine-compiled`` backend imports this before running a rewritten script, so
the same unchanged PyTorch script trains and evaluates its models through captured, guarded graphs
(module calls made inside a captured or already compiled call run as part of it).
"""

from __future__ import annotations

import functools
import weakref

import engine
from engine._dynamo.eval_frame import CompiledFunction
from engine.nn import Module

_real_call = Module.__call__
_depth = [0]
_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # not in the module: deepcopy/pickle stay plain


def _compiled_call(self, *args, **kwargs):
    if _depth[0] or engine.compiler.is_compiling():
        return _real_call(self, *args, **kwargs)
    compiled = _compiled.get(self)
    if compiled is None:
        compiled = _compiled[self] = CompiledFunction(functools.partial(_real_call, self), root=self)
    _depth[0] += 1
    try:
        return compiled(*args, **kwargs)
    finally:
        _depth[0] -= 1


def install() -> None:
    Module.__call__ = _compiled_call
