"""``engine._dynamo``: the capture side of ``engine.compile`` (as ``torch._dynamo``).

Guards and a cache of captured graphs per compiled callable, graph breaks, ``explain``, ``reset``,
``config`` and the backend registry.

Example:
    >>> report = engine._dynamo.explain(fn)(x)  # doctest: +SKIP
    >>> engine._dynamo.reset()
"""

from engine._dynamo import config, exc
from engine._dynamo.backends import list_backends, lookup_backend, register_backend
from engine._dynamo.eval_frame import OptimizedModule, disable, is_compiling, reset
from engine._dynamo.explain import ExplainOutput, explain

__all__ = ["ExplainOutput", "OptimizedModule", "config", "disable", "exc", "explain", "is_compiling", "list_backends",
           "lookup_backend", "register_backend", "reset"]
