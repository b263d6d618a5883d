"""``engine.version`` (``torch.version``): the engine's version and the CUDA runtime CuPy uses, if any."""

from __future__ import annotations

from importlib import metadata

from engine import backend

try:
    __version__ = metadata.version("kiln")
except metadata.PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"
debug = False
git_version = "unknown"


def _cuda() -> str | None:
    if not backend.cuda_available():
        return None
    major, minor = divmod(backend.cupy_or_raise().cuda.runtime.runtimeGetVersion() // 10, 100)
    return f"{major}.{minor}"


cuda = _cuda()
