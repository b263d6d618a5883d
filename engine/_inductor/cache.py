"""Compiled-kernel cache: a kernel's source is its key.

Kernel source depends only on the op sequence, dtypes, broadcast pattern and loop rank of a fused
group, never on the sizes (those are arguments), so a recompile at a new batch size, or the same
group in another graph, reuses the compiled kernel. Each source is written once to
``<cache dir>/k_<sha>.py`` and imported from there, so numba's ``cache=True`` stores the machine code
next to it: a second process loads it instead of compiling. The directory is
``$KILN_INDUCTOR_CACHE_DIR`` or ``<tmp>/kiln_inductor_<user>``. CUDA kernels (CuPy objects) are kept in a
process-wide table keyed by their source (``load_cuda_kernel``); CuPy caches their binaries on disk itself.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

_LOADED: dict = {}
_LOCK = threading.Lock()
stats = {"hits": 0, "compiled": 0}


def cache_dir() -> str:
    path = os.environ.get("KILN_INDUCTOR_CACHE_DIR")
    if not path:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid()) if hasattr(os, "getuid") else "user"
        path = os.path.join(tempfile.gettempdir(), f"kiln_inductor_{user}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def load_kernel(source: str, name: str = "kernel"):
    """The compiled function ``name`` defined by ``source`` (imported from the on-disk cache)."""
    key = hashlib.sha256(source.encode()).hexdigest()[:24]
    with _LOCK:
        fn = _LOADED.get(key)
        if fn is not None:
            stats["hits"] += 1
            return fn
        directory = cache_dir()
        path = os.path.join(directory, f"k_{key}.py")
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(source)
            os.replace(tmp, path)  # atomic: a concurrent process sees the whole file or none
        module_name = f"kiln_inductor_k_{key}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load generated kernel {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        fn = getattr(module, name)
        _LOADED[key] = fn
        stats["compiled"] += 1
        return fn


_CUDA_LOADED: dict = {}
cuda_stats = {"hits": 0, "built": 0}


def load_cuda_kernel(xp, kind: str, *source, **options):
    """The CuPy ``kind`` kernel (``"ElementwiseKernel"``/``"ReductionKernel"``) of ``source``, built once per
    process and array module: every compile of the same group, in any graph, gets the same kernel object
    (CuPy then caches the compiled binary on disk by its source)."""
    key = (id(xp), kind, source, tuple(sorted(options.items())))
    with _LOCK:
        kernel = _CUDA_LOADED.get(key)
        if kernel is not None:
            cuda_stats["hits"] += 1
            return kernel
        kernel = _CUDA_LOADED[key] = getattr(xp, kind)(*source, **options)
        cuda_stats["built"] += 1
        return kernel
