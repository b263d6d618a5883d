"""``engine.export``: capture a module into an ``ExportedProgram`` (``torch.export``'s spelling).

It shares the capture with ``engine.jit.trace``; ``dynamic_shapes`` marks which input dimensions
may change (``Dim``), and the program's module checks the others against the example inputs.

Example:
    >>> batch = engine.export.Dim("batch")
    >>> ep = engine.export.export(model, (x,), dynamic_shapes={"x": {0: batch}})  # doctest: +SKIP
    >>> ep.module()(engine.randn(7, 10)).shape  # doctest: +SKIP
"""

from engine.export._program import Dim, ExportedProgram, ExportGraphSignature, export, load, save

__all__ = ["Dim", "ExportGraphSignature", "ExportedProgram", "export", "load", "save"]
