"""PyTorch's own checkpoint formats, read and written without importing torch.

Reading: the zip format (``<archive>/data.pkl`` plus one raw ``<archive>/data/<key>`` record per
storage, ``byteorder``, ``version``) and the legacy pickle stream (``_use_new_zipfile_serialization=
False``). The pickle goes through a restricted unpickler with PyTorch's ``weights_only=True`` rules:
it resolves only the globals a weights file needs (the tensor and parameter rebuild functions,
storage types, dtypes, ``torch.Size``, ``torch.device``, ``OrderedDict``/``set``/``frozenset``/
``bytearray``, ``_codecs.encode``) to the engine's own code, and calls only those, plus the classes
``add_safe_globals`` trusts. Any other global raises :class:`UnpicklingError` naming it (worded as
``torch.load`` words it), before anything runs. ``weights_only=False`` (the caller trusts the file)
uses a full unpickler instead, with the same torch names mapped to the engine.

Writing: the zip format ``torch.save`` writes (pickle protocol 2, one 64-byte-aligned storage record
per distinct array, so views keep sharing their storage). Tensors are ``_rebuild_tensor_v2`` /
``_rebuild_parameter`` calls over persistent storage ids; any other object pickles as usual, so a
plain tree reads with ``torch.load(path, weights_only=True)`` and a whole module or optimizer is a
real pickle of the engine's classes.
"""

from __future__ import annotations

import functools
import io
import pickle
import struct
import zipfile
from collections import Counter, OrderedDict
from typing import Any, ClassVar

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds  # NumPy 2 moved it
_LEGACY_PROTOCOL = 1001
_ALIGNMENT = 64


class UnpicklingError(pickle.UnpicklingError):
    """A PyTorch checkpoint holds something a weights-only load refuses (the message names it)."""


# ----- types the unpickler hands out ---------------------------------------------------------------
@functools.cache
def _numpy_types() -> tuple[dict, dict, dict]:
    """(torch dtype name -> NumPy type, legacy typed-storage class name -> NumPy type, NumPy dtype ->
    storage class name). Built on first use: ml_dtypes (bfloat16) costs ~0.7 s of CPU to import."""
    import ml_dtypes

    by_torch_dtype = {
        "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
        "float16": np.float16, "half": np.float16, "bfloat16": ml_dtypes.bfloat16,
        "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32, "int16": np.int16,
        "short": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_, "uint16": np.uint16,
        "uint32": np.uint32, "uint64": np.uint64, "complex64": np.complex64, "cfloat": np.complex64,
        "complex128": np.complex128, "cdouble": np.complex128,
    }
    storage = {
        "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
        "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
        "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
        "ComplexFloatStorage": np.complex64, "ComplexDoubleStorage": np.complex128,
    }
    return by_torch_dtype, storage, {np.dtype(v): k for k, v in storage.items()}


# ----- globals the user trusts (torch.serialization.add_safe_globals) -----------------------------
_user_safe_globals: list = []


def _safe_global_names() -> dict:
    """``{"module.qualname": object}`` for what ``add_safe_globals`` allowed."""
    out = {}
    for entry in _user_safe_globals:
        obj, name = entry if isinstance(entry, tuple) else (entry, f"{entry.__module__}.{entry.__qualname__}")
        out[name] = obj
    return out


def add_safe_globals(safe_globals: list) -> None:
    """Allow these classes/functions in PyTorch checkpoints, as ``torch.serialization.add_safe_globals``.

    Each entry is the object (matched by ``module.qualname``) or ``(object, "module.name")`` for a
    name the pickle spells differently. ``engine.load`` then calls and builds them while loading:
    add only what you trust.

    Example:
        >>> engine.serialization.add_safe_globals([argparse.Namespace])  # doctest: +SKIP
    """
    for entry in safe_globals:
        obj = entry[0] if isinstance(entry, tuple) else entry
        if isinstance(entry, tuple) and (len(entry) != 2 or not isinstance(entry[1], str)):
            raise TypeError(f"a safe global is an object or (object, 'module.name'), got {entry!r}")
        if not callable(obj):
            raise TypeError(f"safe globals are classes or functions, got {type(obj).__name__}")
        if entry not in _user_safe_globals:
            _user_safe_globals.append(entry)


def get_safe_globals() -> list:
    """What ``add_safe_globals`` allowed."""
    return list(_user_safe_globals)


def clear_safe_globals() -> None:
    """Forget every ``add_safe_globals`` entry."""
    _user_safe_globals.clear()


class safe_globals:
    """Context manager: ``add_safe_globals(globals)`` inside the block only."""

    def __init__(self, safe_globals: list):
        self.safe_globals = safe_globals

    def __enter__(self):
        self._saved = list(_user_safe_globals)
        add_safe_globals(self.safe_globals)

    def __exit__(self, *exc):
        _user_safe_globals[:] = self._saved
        return False


class _StorageType:
    """Stands for ``torch.FloatStorage`` & co (and ``UntypedStorage``: bytes) inside a pickle."""

    def __init__(self, name: str, np_dtype):
        self.name = name
        self.np = np.dtype(np_dtype)

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _TensorType:
    """Stands for ``torch.Tensor`` / ``torch.nn.Parameter`` as ``_rebuild_from_type_v2``'s new type."""

    def __init__(self, name: str):
        self.name = name


_TENSOR = _TensorType("Tensor")
_PARAMETER = _TensorType("Parameter")


class _Storage:
    """One storage: raw bytes (writeable, shared by every tensor viewing it) and its element type."""

    def __init__(self, raw: np.ndarray, np_dtype: np.dtype, location: str, big_endian: bool):
        self.raw = raw
        self.np = np_dtype
        self.location = location
        self.big_endian = big_endian
        self._typed: dict = {}

    def typed(self, np_dtype: np.dtype) -> np.ndarray:
        np_dtype = np.dtype(np_dtype)
        out = self._typed.get(np_dtype)
        if out is None:
            usable = self.raw.size - self.raw.size % np_dtype.itemsize
            out = self.raw[:usable].view(np_dtype)
            if self.big_endian and np_dtype.itemsize > 1:
                out = self.raw[:usable].view(np_dtype.newbyteorder(">")).astype(np_dtype)
            self._typed[np_dtype] = out
        return out


# ----- the rebuild functions the pickle may call -------------------------------------------------
def _int_tuple(value, what: str) -> tuple:
    if not isinstance(value, tuple | list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                      for v in value):
        raise UnpicklingError(f"corrupt PyTorch checkpoint: tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(value)


def _view(storage, offset, size, stride, np_dtype) -> np.ndarray:
    """The strided view of ``storage`` a tensor is, bounds-checked against the storage."""
    if not isinstance(storage, _Storage):
        raise UnpicklingError("corrupt PyTorch checkpoint: a tensor's storage is not a storage record")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if not isinstance(offset, int) or offset < 0 or len(size) != len(stride) or min(size + stride, default=0) < 0:
        raise UnpicklingError(f"corrupt PyTorch checkpoint: bad tensor geometry (offset={offset!r}, size={size}, "
                              f"stride={stride})")
    base = storage.typed(np_dtype)
    if 0 in size:
        return np.empty(size, dtype=base.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= base.size:
        raise UnpicklingError(f"corrupt PyTorch checkpoint: a tensor of size {size} and stride {stride} at offset "
                              f"{offset} reaches past its storage of {base.size} elements")
    item = base.dtype.itemsize
    return np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=[s * item for s in stride])


class _Builder:
    """Turns rebuilt arrays into engine tensors on the device ``map_location`` chooses."""

    def __init__(self, map_location):
        from engine.serialization import _Reader

        self._placer = _Reader({}, map_location)

    def tensor(self, array: np.ndarray, location: str, requires_grad):
        from engine.device import CPU
        from engine.dtypes import from_numpy_dtype
        from engine.tensor import _make

        try:
            dtype = from_numpy_dtype(array.dtype)
        except TypeError:
            raise UnpicklingError(f"the checkpoint holds a {array.dtype} tensor, a dtype the engine does not "
                                  "support") from None
        t = self._placer._place(_make(array, dtype, CPU), location)
        if requires_grad and not t._requires_grad and dtype.is_floating_point:
            t.requires_grad_(True)
        return t

    def rebuild_tensor(self, storage, storage_offset, size, stride):
        return self.tensor(_view(storage, storage_offset, size, stride, storage.np), storage.location, False)

    def rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                          metadata=None):
        array = _view(storage, storage_offset, size, stride, storage.np)
        return self.tensor(array, storage.location, bool(requires_grad))

    def rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                          metadata=None):
        from engine.dtypes import dtype as dtype_type

        if not isinstance(dtype, dtype_type):
            raise UnpicklingError(f"corrupt PyTorch checkpoint: {dtype!r} is not a dtype")
        array = _view(storage, storage_offset, size, stride, dtype.np)
        return self.tensor(array, storage.location, bool(requires_grad))

    def rebuild_parameter(self, data, requires_grad, backward_hooks=None, state=None):
        from engine.nn.parameter import Parameter
        from engine.tensor import Tensor

        if not isinstance(data, Tensor):
            raise UnpicklingError("corrupt PyTorch checkpoint: a Parameter's data is not a tensor")
        return Parameter(data.detach(), requires_grad=bool(requires_grad))

    def rebuild_from_type_v2(self, func, new_type, args, state):
        # NOTE: python attributes in ``state`` are dropped: a weights load restores data, not objects.
        if func not in self.rebuilders or not isinstance(new_type, _TensorType) or not isinstance(args, tuple):
            raise UnpicklingError(f"refused _rebuild_from_type_v2({func!r}, {new_type!r}): only tensors and "
                                  "parameters are rebuilt")
        out = func(*args)
        if new_type is _PARAMETER and type(out).__name__ != "Parameter":
            out = self.rebuild_parameter(out, out.requires_grad)
        return out

    @property
    def rebuilders(self) -> tuple:
        return (self.rebuild_tensor, self.rebuild_tensor_v2, self.rebuild_tensor_v3, self.rebuild_parameter)


def _codecs_encode(text, encoding="utf-8"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: only ``str`` to ``bytes``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise UnpicklingError(f"refused _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode(encoding)


def _device(*args):
    from engine.device import device

    if not all(isinstance(a, str | int) for a in args):
        raise UnpicklingError(f"corrupt PyTorch checkpoint: bad device {args!r}")
    return device(*args)


def _size(values=()):
    from engine.tensor import Size

    return Size(_int_tuple(tuple(values), "Size"))


def _set(values=()):
    return set(values)


def _frozenset(values=()):
    return frozenset(values)


def _complex(real=0.0, imag=0.0):
    if not all(isinstance(v, int | float) for v in (real, imag)):
        raise UnpicklingError("refused complex() of a non-number")
    return complex(real, imag)


def _bytearray(*args):
    if not all(isinstance(a, bytes | str | int) for a in args):
        raise UnpicklingError("refused bytearray() of a non-bytes value")
    return bytearray(*args)


def _torch_names(builder: _Builder) -> dict:
    """``{"module.name": engine stand-in}`` for the globals a PyTorch weights file names."""
    b = builder
    names = {
        "collections.OrderedDict": OrderedDict, "collections.Counter": Counter,
        "builtins.set": _set, "builtins.frozenset": _frozenset, "builtins.bytearray": _bytearray,
        "builtins.complex": _complex,
        "_codecs.encode": _codecs_encode, "torch.Size": _size, "torch.device": _device,
        "torch._utils._rebuild_tensor": b.rebuild_tensor, "torch._utils._rebuild_tensor_v2": b.rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": b.rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": b.rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": b.rebuild_parameter,
        "torch._tensor._rebuild_from_type_v2": b.rebuild_from_type_v2,
        "torch.Tensor": _TENSOR, "torch._tensor.Tensor": _TENSOR, "torch.nn.parameter.Parameter": _PARAMETER,
        "torch.storage.UntypedStorage": _StorageType("UntypedStorage", np.uint8),
        "torch.UntypedStorage": _StorageType("UntypedStorage", np.uint8),
    }
    for name, np_dtype in _numpy_types()[1].items():
        names[f"torch.{name}"] = _StorageType(name, np_dtype)
    return names


def _full_name(module: str, name: str) -> tuple[str, str]:
    module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
    return module, f"{module}.{name}"


def _torch_name(names: dict, module: str, name: str):
    """The engine's stand-in for a torch global (a rebuild function, a storage type, a dtype), or None."""
    full = f"{module}.{name}"
    if full in names:
        return names[full]
    if module == "torch" and name in _numpy_types()[0]:
        from engine.dtypes import FROM_NUMPY

        try:
            return FROM_NUMPY[np.dtype(_numpy_types()[0][name])]
        except KeyError:
            raise UnpicklingError(f"the checkpoint uses torch.{name}, a dtype the engine does not support") from None
    return None


class _Refusal(UnpicklingError):
    """What a weights-only load refused (``load`` words it as ``torch.load`` does)."""


# ----- the restricted unpickler ------------------------------------------------------------------
class _RestrictedUnpickler(pickle._Unpickler):
    """PyTorch's weights-only rules: named globals map to engine code; REDUCE/BUILD only on those."""

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)
    stack: list  # the base class's working stack and its append, set up by load()
    append: Any

    def __init__(self, file, builder: _Builder, storages):
        super().__init__(file, encoding="utf-8")
        self.builder = builder
        self.storages = storages
        self.globals = _torch_names(builder)
        self.callables = {id(v) for k, v in self.globals.items() if callable(v) and not isinstance(v, type)}
        self.callables |= {id(OrderedDict), id(Counter)}
        self.user = _safe_global_names()
        self.user_ids = {id(obj) for obj in self.user.values()}

    def find_class(self, module, name):
        module, full = _full_name(module, name)
        found = _torch_name(self.globals, module, name)
        if found is not None:
            return found
        if full in self.user:
            return self.user[full]
        raise _Refusal(
            f"Unsupported global: GLOBAL {full} was not an allowed global by default. Please use "
            f"`engine.serialization.add_safe_globals([{full}])` or the `engine.serialization.safe_globals([{full}])` "
            "context manager to allowlist this global if you trust this class/function (or save a state dict "
            "instead of the whole object).")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnpicklingError(f"corrupt PyTorch checkpoint: unsupported persistent id {pid!r}")
        return self.storages(pid)

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if (id(func) not in self.callables and id(func) not in self.user_ids) or not isinstance(args, tuple):
            raise _Refusal(f"Trying to call reduce for unrecognized function {func!r}")
        self.stack[-1] = func(*args)

    def load_build(self):
        if id(type(self.stack[-2])) in self.user_ids:  # a class the user trusts: pickle's own BUILD
            return pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is not OrderedDict or not isinstance(state, dict):
            raise _Refusal("Can only build Tensor, Parameter, OrderedDict or types allowlisted via "
                           f"`add_safe_globals`, but got {type(inst)}")
        # NOTE: a state dict's ``_metadata`` (module versions) arrives this way.
        for key, value in state.items():
            if key != "_metadata":
                raise _Refusal(f"refused to set attribute {key!r} of an OrderedDict")
            inst._metadata = value  # type: ignore[attr-defined]

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if (cls not in (OrderedDict, Counter) and id(cls) not in self.user_ids) or not isinstance(args, tuple):
            raise _Refusal("Can only create new object for nn.Parameter or classes allowlisted via `add_safe_globals` "
                           f"but got {cls!r}")
        self.append(cls.__new__(cls, *args))

    def load_refused(self):
        raise _Refusal("the pickle uses an opcode that builds arbitrary objects")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    for _op in (pickle.INST, pickle.OBJ, pickle.NEWOBJ_EX, pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = load_refused


class _TrustingUnpickler(pickle.Unpickler):
    """``weights_only=False``: the caller trusts the file, so any global it names is imported and run.

    Torch's names still map to the engine's stand-ins, so tensors come back as engine tensors.
    """

    def __init__(self, file, builder: _Builder, storages):
        super().__init__(file, encoding="utf-8")
        self.storages = storages
        self.globals = _torch_names(builder)

    def find_class(self, module, name):
        found = _torch_name(self.globals, _full_name(module, name)[0], name)
        return found if found is not None else super().find_class(module, name)

    persistent_load = _RestrictedUnpickler.persistent_load


# ----- reading -------------------------------------------------------------------------------------
def is_zip(data) -> bool:
    return bytes(data[:4]) == b"PK\x03\x04"


def is_pickle(data) -> bool:
    return len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5


def is_tar(data) -> bool:
    return bytes(data[257:262]) == b"ustar"


_UNSAFE_MESSAGE = ("Re-running `engine.load` with `weights_only` set to `False` will likely succeed, but it can "
                   "result in arbitrary code execution. Do it only if you got the file from a trusted source.")


def load(data, map_location=None, weights_only: bool = True):
    """Read a PyTorch checkpoint (zip or legacy) from bytes: weights-only, or fully when the caller trusts it."""
    builder = _Builder(map_location)
    unpickler = _RestrictedUnpickler if weights_only else _TrustingUnpickler
    if is_tar(data):
        raise ValueError("this is PyTorch's tar checkpoint format (PyTorch < 0.4), which engine.load does not "
                         "read; re-save it with torch.save from a newer PyTorch")
    try:
        if is_zip(data):
            return _load_zip(bytes(data), builder, unpickler)
        return _load_legacy(bytes(data), builder, unpickler)
    except _Refusal as exc:
        raise UnpicklingError(_weights_only_message(str(exc))) from None


def _weights_only_message(error: str) -> str:
    """``torch.load``'s wording: what was refused, and the two ways to load the file if it is trusted."""
    if "was not an allowed global" in error:
        return ("Weights only load failed. This file can still be loaded, to do so you have two options, do those "
                f"steps only if you trust the source of the checkpoint.\n\t(1) {_UNSAFE_MESSAGE}\n\t(2) "
                "Alternatively, to load with `weights_only=True` please check the recommended steps in the following "
                f"error message.\n\tWeightsUnpickler error: {error}")
    return f"Weights only load failed. {_UNSAFE_MESSAGE}\n\nWeightsUnpickler error: {error}"


def _load_zip(data: bytes, builder: _Builder, unpickler: type):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a PyTorch checkpoint: a broken zip file ({exc})") from None
    names = {info.filename for info in archive.infolist()}
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
              [n for n in names if n == "data.pkl"]
    if len(pickles) != 1:
        raise ValueError("not a PyTorch checkpoint: the zip file has no <archive>/data.pkl record (an engine.jit "
                         "program? load it with engine.jit.load)")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ValueError(f"corrupt PyTorch checkpoint: unknown byteorder {byteorder!r}")
    loaded: dict = {}

    def storage(pid):
        if len(pid) != 5:
            raise UnpicklingError(f"corrupt PyTorch checkpoint: bad storage record {pid!r}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise UnpicklingError(f"corrupt PyTorch checkpoint: bad storage record {pid!r}")
        if key not in loaded:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise UnpicklingError(f"corrupt PyTorch checkpoint: storage {key!r} is missing")
            raw = np.frombuffer(bytearray(archive.read(name)), dtype=np.uint8)
            if not isinstance(numel, int) or numel * storage_type.np.itemsize > raw.size:
                raise UnpicklingError(f"corrupt PyTorch checkpoint: storage {key!r} is shorter than {numel!r} "
                                      "elements")
            loaded[key] = _Storage(raw, storage_type.np, location, byteorder == "big")
        return loaded[key]

    return unpickler(io.BytesIO(archive.read(pickles[0])), builder, storage).load()


def _load_legacy(data: bytes, builder: _Builder, unpickler: type):
    stream = io.BytesIO(data)
    storages: dict = {}

    def storage(pid):
        if len(pid) != 6:
            raise UnpicklingError(f"corrupt PyTorch checkpoint: bad storage record {pid!r}")
        _, storage_type, key, location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(location, str) \
                or not isinstance(numel, int) or numel < 0:
            raise UnpicklingError(f"corrupt PyTorch checkpoint: bad storage record {pid!r}")
        if key not in storages:
            nbytes = numel * storage_type.np.itemsize
            if nbytes > len(data):
                raise UnpicklingError(f"corrupt PyTorch checkpoint: storage {key!r} is larger than the file")
            storages[key] = _Storage(np.zeros(nbytes, dtype=np.uint8), storage_type.np, location, False)
        if view is not None:
            raise UnpicklingError("this legacy checkpoint uses storage views (PyTorch < 1.0), which engine.load "
                                  "does not read")
        return storages[key]

    def unpickle():
        try:
            return unpickler(stream, builder, storage).load()
        except EOFError:
            raise ValueError("not a PyTorch checkpoint: the pickle stream ends early") from None

    if unpickle() != _LEGACY_MAGIC:
        raise ValueError("not a PyTorch checkpoint: a pickle without PyTorch's magic number (engine.load reads "
                         "safetensors files and PyTorch's own checkpoints only)")
    if unpickle() != _LEGACY_PROTOCOL:
        raise ValueError("unsupported PyTorch legacy checkpoint protocol")
    info = unpickle()
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise ValueError("this legacy checkpoint was written on a big-endian machine, which engine.load does not read")
    result = unpickle()
    keys = unpickle()
    if not isinstance(keys, list):
        raise ValueError("corrupt PyTorch checkpoint: the storage key list is missing")
    for key in keys:
        target = storages.get(key)
        header = stream.read(8)
        if target is None or len(header) != 8:
            raise ValueError(f"corrupt PyTorch checkpoint: unexpected storage {key!r}")
        (count,) = struct.unpack("<q", header)
        nbytes = count * target.np.itemsize
        chunk = stream.read(nbytes)
        if count < 0 or len(chunk) != nbytes or nbytes != target.raw.size:
            raise ValueError(f"corrupt PyTorch checkpoint: storage {key!r} has the wrong length")
        target.raw[:] = np.frombuffer(chunk, dtype=np.uint8)
    return result


# ----- writing -------------------------------------------------------------------------------------
class _Global:
    """A name written as a pickle GLOBAL (``torch._utils._rebuild_tensor_v2``) without importing it."""

    _made: ClassVar[dict] = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._made:
            made = super().__new__(cls)
            made.module, made.name = module, name
            cls._made[key] = made
        return cls._made[key]

    def __call__(self, *args):  # NOTE: pickle wants a reduce's function callable; this one is only written
        raise TypeError(f"{self.module}.{self.name} stands for torch's function in a pickle; it is never called")


class _StorageRef:
    """One storage record, written as PyTorch's persistent id ``("storage", type, key, location, numel)``."""

    def __init__(self, key: str, np_dtype, location: str, numel: int):
        self.pid = ("storage", _Global("torch", _numpy_types()[2][np.dtype(np_dtype)]), key, location, numel)


class _PlainTensor:
    """A Parameter's data inside ``_rebuild_parameter``: written as a plain tensor."""

    def __init__(self, tensor):
        self.tensor = tensor


class _Pickler(pickle._Pickler):
    """Pickle protocol 2 as ``torch.save`` writes it: tensors rebuilt from storage records.

    With ``plan=None`` it only collects the tensors it meets (the first of two passes), so the
    storages can be planned before anything is written. Engine dtypes, devices and sizes are
    spelled as torch's; every other object pickles as usual (its class by module and name).
    """

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file, plan: dict | None, records: list):
        from engine.device import device
        from engine.dtypes import dtype
        from engine.tensor import Size, Tensor

        super().__init__(file, protocol=2, fix_imports=False)
        self.plan = plan
        self.records = records
        self.found: dict = {}
        self._types = (Tensor, dtype, device, Size)

    def persistent_id(self, obj):
        if type(obj) is _StorageRef:
            return obj.pid
        if self.plan is None and isinstance(obj, self._types[0]):
            self.found.setdefault(id(obj), obj)
            return 0
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, self._types[1]):  # NOTE: a dtype is a bare GLOBAL (torch.float32), never a call
            if obj.name not in _numpy_types()[0]:
                raise TypeError(f"engine.save can't store dtype {obj.name} in PyTorch's format")
            obj = _Global("torch", obj.name)
        elif isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            obj = obj.item()
        super().save(obj, save_persistent_id)

    def save_global_name(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = save_global_name

    def reducer_override(self, obj):
        tensor, _, device, size = self._types
        if isinstance(obj, tensor):
            if type(obj).__name__ == "Parameter":
                return (_Global("torch._utils", "_rebuild_parameter"),
                        (_PlainTensor(obj), bool(obj._requires_grad), OrderedDict()))
            return self._rebuild_tensor(obj, bool(obj._requires_grad))
        if type(obj) is _PlainTensor:
            return self._rebuild_tensor(obj.tensor, False)
        if isinstance(obj, device):
            return (_Global("torch", "device"), (str(obj),))
        if isinstance(obj, size):
            return (_Global("torch", "Size"), (tuple(obj),))
        if type(obj) is complex:
            return (_Global("builtins", "complex"), (obj.real, obj.imag))
        return NotImplemented

    def _rebuild_tensor(self, t, requires_grad: bool):
        if t.is_quantized:
            raise TypeError("engine.save can't store a quantized tensor in PyTorch's format")
        assert self.plan is not None
        if id(t) not in self.plan:  # made while pickling (by a __getstate__): a storage of its own
            plan, records = _plan_storages({id(t): t}, first_key=len(self.records))
            self.plan.update(plan)
            self.records += records
            self.found[id(t)] = t
        key, offset, strides, numel, np_dtype = self.plan[id(t)]
        location = "cpu" if t._device.type == "cpu" else str(t._device)
        return (_Global("torch._utils", "_rebuild_tensor_v2"),
                (_StorageRef(key, np_dtype, location, numel), offset, tuple(t.shape), strides, requires_grad,
                 OrderedDict()))


def _owner(array: np.ndarray):
    """The object that owns an array's memory (through views, ``as_strided`` wrappers and buffers)."""
    obj: Any = array
    while getattr(obj, "base", None) is not None:
        obj = obj.base
    return obj


def _bytes_of(owner):
    """A flat uint8 view of an owner's memory, or None when it has no plain contiguous buffer."""
    if isinstance(owner, np.ndarray):
        return owner.reshape(-1).view(np.uint8) if owner.flags.c_contiguous and owner.dtype.kind != "O" else None
    try:
        return np.frombuffer(owner, dtype=np.uint8)
    except (TypeError, ValueError):
        return None


def _plan_storages(tensors: dict, first_key: int = 0) -> tuple[dict, list]:
    """Storages for the tensors: views of one buffer with one dtype share one storage record.

    Returns ``{id(tensor): (key, offset, strides, storage_numel, np_dtype)}`` and ``[(key, array)]``
    (keys counted from ``first_key``).
    """
    from engine import backend

    plan: dict = {}
    records: list = []
    groups: dict = {}
    for tid, t in tensors.items():
        array = backend.to_numpy(t._data)
        if np.dtype(array.dtype) not in _numpy_types()[2]:
            raise TypeError(f"engine.save can't store a {array.dtype} tensor in PyTorch's format")
        item = array.dtype.itemsize
        owner = _owner(array)
        flat = _bytes_of(owner) if array.size else None
        if (flat is None or not array.dtype.isnative or any(s < 0 or s % item for s in array.strides)):
            flat = None
        groups.setdefault((id(owner), array.dtype) if flat is not None else ("copy", tid), []).append(
            (tid, array, flat))
    for members in groups.values():
        flat = members[0][2]
        if flat is None:
            tid, array, _ = members[0]
            copy = np.ascontiguousarray(array).reshape(-1).copy()
            strides, acc = [], 1
            for n in reversed(array.shape):
                strides.append(acc)
                acc *= max(n, 1)
            key = str(first_key + len(records))
            records.append((key, copy))
            plan[tid] = (key, 0, tuple(reversed(strides)), copy.size, array.dtype)
            continue
        item = members[0][1].dtype.itemsize
        bounds = [_byte_bounds(a) for _, a, _ in members]
        lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
        start = flat.__array_interface__["data"][0]
        pointers = [a.__array_interface__["data"][0] for _, a, _ in members]
        if lo < start or hi > start + flat.size or any((p - lo) % item for p in pointers) or (hi - lo) % item:
            for tid, array, _ in members:  # odd memory: each tensor gets its own copy
                key = str(first_key + len(records))
                copy = np.ascontiguousarray(array).reshape(-1).copy()
                records.append((key, copy))
                plan[tid] = (key, 0, tuple(s // item for s in np.ascontiguousarray(array).strides), copy.size,
                             array.dtype)
            continue
        storage = flat[lo - start: hi - start].view(members[0][1].dtype)
        key = str(first_key + len(records))
        records.append((key, storage))
        for (tid, array, _), pointer in zip(members, pointers, strict=True):
            plan[tid] = (key, (pointer - lo) // item, tuple(s // item for s in array.strides), storage.size,
                         array.dtype)
    return plan, records


def dumps(obj) -> bytes:
    """PyTorch's zip checkpoint bytes for ``obj`` (what ``torch.save(obj, f)`` would write)."""
    import hashlib

    collector = _Pickler(io.BytesIO(), None, [])
    collector.dump(obj)
    plan, storages = _plan_storages(collector.found)
    out = io.BytesIO()
    _Pickler(out, plan, storages).dump(obj)
    pickled = out.getvalue()
    del collector  # NOTE: it kept the tensors alive until now, so no id in the plan was reused
    records = [("data.pkl", pickled), (".format_version", b"1"), (".storage_alignment", b"64"),
               ("byteorder", b"little")]
    digest = hashlib.sha256(pickled)
    for key, array in storages:
        data = array.tobytes()
        digest.update(data)
        records.append((f"data/{key}", data))
    records += [("version", b"3\n"), (".data/serialization_id", str(int(digest.hexdigest()[:32], 16)).encode())]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, data in records:
            info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            if name.startswith("data/"):
                # NOTE: pad the local header's extra field so the record's bytes start 64-byte aligned
                # (PyTorch's writer does the same; torch.load(mmap=True) relies on it).
                start = buffer.tell() + 30 + len(info.filename.encode()) + 4
                pad = (-start) % _ALIGNMENT
                info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
            archive.writestr(info, data)
    return buffer.getvalue()


__all__ = ["UnpicklingError", "add_safe_globals", "clear_safe_globals", "dumps", "get_safe_globals", "is_pickle",
           "is_tar", "is_zip", "load", "safe_globals"]
