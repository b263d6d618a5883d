"""The modules ``trace`` and ``load`` return: a ``GraphModule`` with TorchScript's names."""

from __future__ import annotations

from engine.fx.graph_module import GraphModule


class ScriptModule(GraphModule):
    """A module whose ``forward`` runs a captured graph (no Python model code).

    It has the original parameters and buffers under the same names (``state_dict()`` loads into
    the original class), ``.graph`` and ``.code``, and is saved with ``engine.jit.save``.
    """

    @property
    def original_name(self) -> str:
        return self._class_name

    def save(self, f, _extra_files=None) -> None:
        from engine.jit._serialization import save

        save(self, f, _extra_files=_extra_files)

    @property
    def inlined_graph(self):
        return self.graph


class RecursiveScriptModule(ScriptModule):
    """What ``engine.jit.load`` returns (as ``torch.jit.RecursiveScriptModule``)."""


class TracedModule(ScriptModule):
    """What tracing a module returns."""


class TopLevelTracedModule(TracedModule):
    """What ``engine.jit.trace(module, ...)`` returns (as ``torch.jit.TopLevelTracedModule``)."""


class ScriptFunction(ScriptModule):
    """What tracing a plain function returns: callable, with ``.graph``, ``.code`` and ``save``."""

    @property
    def name(self) -> str:
        return self._class_name
