"""``engine.jit``: run a model without its Python class (``torch.jit``'s tracing half).

``trace`` records the ops a module or function runs on example inputs into a graph;
the returned ``ScriptModule`` interprets that graph. ``save``/``load`` write it as one file
(graph JSON + safetensors weights) that a process without the model's code can run.

Example:
    >>> traced = engine.jit.trace(model.eval(), (engine.randn(4, 10),))  # doctest: +SKIP
    >>> engine.jit.save(traced, "model.pt")  # doctest: +SKIP
    >>> engine.jit.load("model.pt")(engine.randn(7, 10)).shape  # doctest: +SKIP
    engine.Size([7, 2])
"""

from engine.fx.tracer import TracerWarning
from engine.jit._annotations import Final, annotate, export, ignore, unused
from engine.jit._freeze import freeze, optimize_for_inference
from engine.jit._script import (
           RecursiveScriptModule,
           ScriptFunction,
           ScriptModule,
           TopLevelTracedModule,
           TracedModule,
)
from engine.jit._serialization import load, save
from engine.jit._trace import TracingCheckError, is_tracing, script, trace

__all__ = ["Final", "RecursiveScriptModule", "ScriptFunction", "ScriptModule", "TopLevelTracedModule", "TracedModule",
           "TracerWarning", "TracingCheckError", "annotate", "export", "freeze", "ignore", "is_tracing", "load",
           "optimize_for_inference", "save", "script", "trace", "unused"]
