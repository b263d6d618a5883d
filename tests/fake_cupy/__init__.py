"""A strict CuPy-shaped array module over NumPy, for tests only: GPU code paths run in CI without a GPU.

It is named ``fake_cupy`` and lives under tests/, so nothing imports it as ``cupy`` by accident; the engine
uses it only through ``engine.backend._use_array_module_for_tests``. It offers only names the real CuPy has
(``names.json``, frozen from cupy-cuda12x), its arrays refuse implicit conversion to NumPy, and ``.get()`` /
``asnumpy`` are the only ways back to the host.
"""

from __future__ import annotations

import numpy as _np

from fake_cupy import _namespace, cuda, fft, lib, linalg, random
from fake_cupy._core import NAMES, host_sync, ndarray, unwrap, wrap
from fake_cupy._core import _Stats as _Stats  # host-copy counter for tests

__all__ = ["ElementwiseKernel", "ReductionKernel", "cuda", "fft", "lib", "linalg", "ndarray", "random"]  # plus CuPy's names, lazily

__version__ = "14.2.0"


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return _np if not any(isinstance(a, ndarray) for a in args) else __import__(__name__)


def is_available() -> bool:
    return True


def get_default_memory_pool():
    return cuda._POOL


def get_default_pinned_memory_pool():
    return cuda.PinnedMemoryPool()


def _unsupported(name):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"fake cupy: {name} compiles CUDA code and cannot run without a GPU")

    return fn


from fake_cupy._kernels import ElementwiseKernel, ReductionKernel  # noqa: E402 - CUDA C run by a NumPy translator

RawKernel = _unsupported("RawKernel")
RawModule = _unsupported("RawModule")
__getattr__ = _namespace.module_getattr("cupy", _np, globals(), host_ok={"array", "asarray", "asanyarray"})
del host_sync, unwrap, wrap, NAMES
