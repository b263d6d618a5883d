"""Lazily built module attributes: each CuPy name that NumPy also has, wrapped to stay on the fake device."""

from __future__ import annotations

import functools

import numpy as np

from fake_cupy._core import NAMES, _operand, ndarray, record, unwrap, wrap


class ufunc:
    """A NumPy ufunc that takes and returns fake device arrays only (Python/NumPy scalars allowed)."""

    def __init__(self, np_ufunc):
        self._uf = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def _run(self, method, args, kwargs):
        if "out" in kwargs and kwargs["out"] is not None:
            out = kwargs["out"]
            kwargs["out"] = tuple(unwrap(o) for o in out) if isinstance(out, tuple) else unwrap(out)
        if method in ("__call__", "outer"):  # CuPy's ufuncs take arrays and scalars only, not lists
            args = tuple(_operand(a) for a in args)
        else:
            args = (_operand(args[0]), *unwrap(args[1:]))
        fn = getattr(self._uf, method)
        return record(lambda: fn(*args, **kwargs), wrap(fn(*args, **kwargs)))

    def __call__(self, *args, **kwargs):
        return self._run("__call__", args, kwargs)

    def reduce(self, *args, **kwargs):
        return self._run("reduce", args, kwargs)

    def accumulate(self, *args, **kwargs):
        return self._run("accumulate", args, kwargs)

    def outer(self, *args, **kwargs):
        return self._run("outer", args, kwargs)

    def at(self, a, indices, b=None):
        if not isinstance(a, ndarray):
            raise TypeError(f"Unsupported type {type(a)}")
        target, indices, b = a._a, unwrap(indices), unwrap(b) if b is not None else None
        self._uf.at(target, indices, b)
        record(lambda: self._uf.at(target, indices, b), None)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


def function(fn, host_ok: bool):
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        args = unwrap(args, allow_host=host_ok)
        kwargs = {k: unwrap(v, allow_host=host_ok) for k, v in kwargs.items()}
        return record(lambda: fn(*args, **kwargs), wrap(fn(*args, **kwargs)))

    return wrapped


def module_getattr(key: str, np_module, namespace: dict, host_ok=frozenset()):
    """A module ``__getattr__`` giving CuPy's names under ``key`` from ``np_module``, cached in ``namespace``."""

    def __getattr__(name: str):
        if name not in NAMES[key] or not hasattr(np_module, name):
            raise AttributeError(f"module '{key}' has no attribute '{name}'")
        value = getattr(np_module, name)
        if isinstance(value, np.ufunc):
            value = ufunc(value)
        elif callable(value) and not isinstance(value, type):
            value = function(value, name in host_ok)
        namespace[name] = value
        return value

    return __getattr__
