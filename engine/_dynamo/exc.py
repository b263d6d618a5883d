"""Errors of ``engine.compile`` (as ``torch._dynamo.exc``)."""

from __future__ import annotations


class TorchDynamoException(RuntimeError):
    """Base of the errors ``engine.compile`` raises."""


class Unsupported(TorchDynamoException):
    """Python the capture cannot record (a graph break) under ``fullgraph=True``; the message names it."""


class BackendCompilerFailed(TorchDynamoException):
    """A backend raised while compiling a captured graph."""

    def __init__(self, backend_name: str, inner: BaseException):
        self.backend_name = backend_name
        self.inner_exception = inner
        super().__init__(f"backend={backend_name!r} raised:\n{type(inner).__name__}: {inner}")


class InvalidBackend(TorchDynamoException):
    """``backend=`` names no registered backend."""

    def __init__(self, name: str):
        from engine._dynamo.backends import list_backends

        super().__init__(f"Invalid backend: {name!r}, see `engine._dynamo.list_backends()` for available "
                         f"backends: {list_backends(exclude_tags=())}")
