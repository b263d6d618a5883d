"""``engine.compiler``: the public switches of ``engine.compile`` (as ``torch.compiler``)."""

from __future__ import annotations

from engine._dynamo.backends import list_backends
from engine._dynamo.eval_frame import disable, is_compiling, reset

__all__ = ["disable", "is_compiling", "list_backends", "reset"]
