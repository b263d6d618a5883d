"""The fake ``cupy.ndarray``: a NumPy array that refuses implicit host conversion as CuPy does."""

from __future__ import annotations

import json
import operator
import weakref
from pathlib import Path

import numpy as np

NAMES: dict[str, frozenset[str]] = {
    key: frozenset(names)
    for key, names in json.loads((Path(__file__).with_name("names.json")).read_text())["namespaces"].items()
}
_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy "
             "array explicitly.")
_SCALARS = (int, float, complex, bool, np.generic)


class _Stats:
    """Device-to-host copies seen (``.get()``, ``asnumpy``, ``float()``, ``item()``...): a test can assert
    that a hot loop makes none."""

    host_syncs = 0


_CAPTURE_ERROR = ("cudaErrorStreamCaptureUnsupported: operation not permitted when stream is capturing "
                  "(a device-to-host copy inside CUDA graph capture)")


def host_sync():
    if _capture.tape is not None:
        raise RuntimeError(_CAPTURE_ERROR)
    _Stats.host_syncs += 1


class _capture:
    """While a stream captures (``Stream.begin_capture``), every device operation is also recorded as a way to
    recompute its result into the same memory, so that ``Graph.launch`` replays it as a CUDA graph would."""

    tape: list | None = None


def record(recompute, result):
    """Remember how to recompute ``result`` (a device value, or None for in-place work) while capturing."""
    if _capture.tape is not None:
        _capture.tape.append((recompute, result))
    return result


def replay(tape) -> None:
    for recompute, target in tape:
        _refill(target, recompute())


def _refill(target, value) -> None:
    if isinstance(target, ndarray):
        if target._a is not value:
            np.copyto(target._a, value)
    elif isinstance(target, list | tuple):
        for t, v in zip(target, value, strict=True):
            _refill(t, v)


class _Memory:
    """Bytes of live arrays (CuPy's ``used_bytes``), bytes a pool would keep cached after frees, and the
    installed memory hooks (``cupy.cuda.memory_hook.MemoryHook``), which see every allocation and free."""

    live = 0
    cached = 0
    hooks: list = []


def _allocated(array: np.ndarray) -> None:
    n = array.nbytes
    _Memory.live += n
    _Memory.cached = max(0, _Memory.cached - n)
    weakref.finalize(array, _freed, n, id(array))
    for hook in list(_Memory.hooks):
        hook.malloc_postprocess(device_id=0, size=n, mem_size=n, mem_ptr=id(array), pmem_id=id(array))


def _freed(n: int, ptr: int) -> None:
    _Memory.live -= n
    _Memory.cached += n
    for hook in list(_Memory.hooks):
        hook.free_postprocess(device_id=0, mem_size=n, mem_ptr=ptr, pmem_id=ptr)


def unwrap(value, allow_host: bool = False):
    """The NumPy array behind ``value``; NumPy arrays are refused (CuPy's "Unsupported type")."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray) and not allow_host:
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, list | tuple):
        return type(value)(unwrap(v, allow_host) for v in value)
    return value


def wrap(value):
    """Results back onto the "device": arrays and NumPy scalars become ``ndarray`` (CuPy returns 0-d arrays)."""
    if isinstance(value, np.ndarray):
        return _new(value)
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        return _new(np.asarray(value))
    if isinstance(value, tuple) and type(value) is not tuple:  # namedtuple results (e.g. linalg.qr)
        return type(value)(*(wrap(v) for v in value))
    if isinstance(value, list | tuple):
        return type(value)(wrap(v) for v in value)
    return value


_owners: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id(owning NumPy array) -> its wrapper


def _new(array: np.ndarray) -> ndarray:
    if array.dtype.kind not in "biufc" and array.dtype.name != "bfloat16":
        raise TypeError(f"Unsupported dtype {array.dtype}")
    if array.base is None:
        owner = _owners.get(id(array))
        if owner is not None and owner._a is array:  # e.g. a ufunc's ``out=``: CuPy returns that very array
            return owner
    out = object.__new__(ndarray)
    out._a = array
    if array.base is None:
        _owners[id(array)] = out
        _allocated(array)
    return out


def _base(array: np.ndarray):
    """A view's ``base`` is the same wrapper object as its owner (CuPy keeps identity, as NumPy does)."""
    root = array.base
    if not isinstance(root, np.ndarray):
        return None
    owner = _owners.get(id(root))
    return owner if owner is not None and owner._a is root else _new(root)


def _operand(other):
    if isinstance(other, ndarray):
        return other._a
    if isinstance(other, _SCALARS):
        return other
    raise TypeError(f"Unsupported type {type(other)}")


def _binary(op, reflected=False):
    def method(self, other):
        try:
            value = _operand(other)
        except TypeError:
            if isinstance(other, np.ndarray):
                raise
            return NotImplemented
        a = self._a

        def recompute():
            return op(value, a) if reflected else op(a, value)

        return record(recompute, wrap(recompute()))

    return method


def _inplace(op):
    def method(self, other):
        a, value = self._a, _operand(other)
        op(a, value)
        record(lambda: op(a, value), None)
        return self

    return method


def _unary(op):
    def method(self):
        a = self._a
        return record(lambda: op(a), _new(op(a)))

    return method


def _host(convert):
    def method(self):
        host_sync()
        return convert(self._a)

    return method


class ndarray:
    """``cupy.ndarray`` over a NumPy array; only CuPy's attributes, no implicit conversion to NumPy."""

    __slots__ = ("__weakref__", "_a")
    __array_priority__ = 100
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("fake cupy.ndarray(): memptr/strides are not supported")
        self._a = np.empty(shape, dtype=dtype, order=order)
        _owners[id(self._a)] = self
        _allocated(self._a)

    # ----- the host boundary ------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def get(self, stream=None, order="C", out=None, blocking=True):
        host_sync()
        if out is not None:
            np.copyto(out, self._a)
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, not {type(arr)}")
        if arr.shape != self._a.shape:
            raise ValueError("Shape mismatch")
        np.copyto(self._a, arr)

    __float__ = _host(float)
    __int__ = _host(int)
    __complex__ = _host(complex)
    __bool__ = _host(bool)
    item = _host(lambda a: a.item())
    tolist = _host(lambda a: a.tolist())
    tobytes = _host(lambda a: a.tobytes())
    __repr__ = _host(lambda a: repr(a))
    __str__ = _host(lambda a: str(a))

    def __format__(self, spec):
        return format(self.item() if self._a.ndim == 0 else str(self), spec)

    def __reduce__(self):
        return (_new, (self._a.copy(),))

    # ----- NumPy protocols: dispatch to the fake module, as CuPy does ---------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc.__name__ not in NAMES["cupy"]:
            return NotImplemented
        if "out" in kwargs:
            kwargs["out"] = tuple(_operand(o) if isinstance(o, ndarray) else _reject(o) for o in kwargs["out"])
        args = [_operand(x) if not isinstance(x, list | tuple) else unwrap(x) for x in inputs]
        fn = getattr(ufunc, method)
        return record(lambda: fn(*args, **kwargs), wrap(fn(*args, **kwargs)))

    def __array_function__(self, func, types, args, kwargs):
        import importlib

        module = importlib.import_module(__package__)
        try:
            for part in func.__module__.split(".")[1:]:
                module = getattr(module, part)
            fake = getattr(module, func.__name__)
        except AttributeError:
            return NotImplemented
        if not all(issubclass(t, ndarray | np.ndarray) for t in types):
            return NotImplemented
        return fake(*args, **kwargs)

    # ----- shape and metadata -----------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: _new(self._a.T))
    mT = property(lambda self: _new(np.swapaxes(self._a, -1, -2)))
    real = property(lambda self: _new(self._a.real))
    imag = property(lambda self: _new(self._a.imag))
    base = property(lambda self: _base(self._a))

    @property
    def flat(self):
        return _FlatIter(self._a)

    @property
    def device(self):
        from fake_cupy.cuda import Device

        return Device(0)

    def __getattr__(self, name):
        if name not in NAMES["cupy.ndarray"] or not callable(getattr(np.ndarray, name, None)):
            raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}'")
        bound = getattr(self._a, name)

        def method(*args, **kwargs):
            args, kwargs = unwrap(args), {k: unwrap(v) for k, v in kwargs.items()}
            return record(lambda: bound(*args, **kwargs), wrap(bound(*args, **kwargs)))

        return method

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (_new(self._a[i]) for i in range(len(self._a)))

    def __getitem__(self, key):
        a, key = self._a, unwrap(key, allow_host=True)
        return record(lambda: a[key], wrap(a[key]))

    def __setitem__(self, key, value):
        a, key, value = self._a, unwrap(key, allow_host=True), unwrap(value, allow_host=True)
        a[key] = value
        record(lambda: a.__setitem__(key, value), None)

    def __copy__(self):
        return _new(self._a.copy())

    def __deepcopy__(self, memo):
        return _new(self._a.copy())

    __neg__ = _unary(operator.neg)
    __pos__ = _unary(operator.pos)
    __abs__ = _unary(operator.abs)
    __invert__ = _unary(operator.invert)


class _FlatIter:
    """``ndarray.flat``: indexing into the flattened array, results on the device."""

    def __init__(self, array):
        self._a = array

    def __getitem__(self, key):
        return wrap(np.asarray(self._a.flat[unwrap(key, allow_host=True)]))

    def __setitem__(self, key, value):
        self._a.flat[unwrap(key, allow_host=True)] = unwrap(value)

    def __len__(self):
        return self._a.size


def _reject(value):
    raise TypeError(f"Unsupported type {type(value)}")


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor",
              "lshift", "rshift"):
    _op = getattr(operator, _name + ("_" if _name in ("and", "or") else ""))
    setattr(ndarray, f"__{_name}__", _binary(_op))
    setattr(ndarray, f"__r{_name}__", _binary(_op, reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace(getattr(operator, f"i{_name}")))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(getattr(operator, _name)))
ndarray.__divmod__ = _binary(divmod)  # type: ignore[attr-defined]
