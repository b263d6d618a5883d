"""``engine.save`` / ``engine.load``: one safetensors file per object of plain data.

Tensors (and NumPy arrays, bytes) are safetensors tensors; everything around them (dicts, lists,
tuples, numbers, strings, None) is a JSON tree in the file's metadata (``kiln.tree``), where a
tensor is a reference by name. A flat ``{name: tensor}`` state dict keeps its names, so
``safetensors.torch.load_file`` reads it as a PyTorch state dict; a file with no ``kiln.tree``
(written by ``safetensors.torch.save_file``) loads as ``{name: tensor}``.

Loading parses the header and the JSON itself and builds only tensors, arrays, bytes and plain
Python values: a file cannot name a class or a function, so it cannot run code.

PyTorch's own checkpoints are read too (``engine.load`` tells the formats apart by their content):
the zip format and the legacy pickle stream, through a restricted unpickler with
``torch.load(weights_only=True)``'s rules (``engine._torch_format``), or fully with
``weights_only=False``. ``engine.save`` writes PyTorch's zip format, which ``torch.load(path,
weights_only=True)`` reads, when asked with ``format="torch"`` or ``_use_new_zipfile_serialization=True``,
or when the path ends in ``.pt`` / ``.pth`` (and no format is given); otherwise it writes safetensors.
An object that is not plain data (a whole module, an optimizer) is pickled into PyTorch's format,
as ``torch.save`` does.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile

import numpy as np
from safetensors import TensorSpec, serialize

from engine.dtypes import bfloat16

TREE_KEY = "kiln.tree"
FORMAT_KEY = "kiln.format"
FORMAT_VERSION = "1"
_MAX_HEADER = 100 * 1024 * 1024

# safetensors dtype codes <-> NumPy dtypes
_DTYPES = {"BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
           "I16": np.dtype(np.int16), "U16": np.dtype(np.uint16), "I32": np.dtype(np.int32),
           "U32": np.dtype(np.uint32), "I64": np.dtype(np.int64), "U64": np.dtype(np.uint64),
           "F16": np.dtype(np.float16), "F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}


# ----- save --------------------------------------------------------------------------------------
TORCH_SUFFIXES = (".pt", ".pth")


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=None, *,
         format=None) -> None:
    """Save tensors, state dicts and nested checkpoints to one file (written atomically).

    Args:
        obj: a tensor, array, number, string, bytes, None, or lists/tuples/dicts of them
            (module, optimizer and scheduler state dicts, ``engine.get_rng_state()`` ...); or any
            picklable object (a whole module, an optimizer), which is pickled into PyTorch's zip
            format as ``torch.save`` does, its tensors as storage records.
        f: a path (written to a temporary name, then renamed) or a binary file object.
        format: ``"safetensors"`` (Kiln's format, plain data only) or ``"torch"`` (PyTorch's zip
            format; plain data in it is read by ``torch.load(f, weights_only=True)``). By default a
            path ending in ``.pt``/``.pth`` or an object that is not plain data gets PyTorch's format
            and anything else safetensors; ``_use_new_zipfile_serialization=True`` also asks for
            PyTorch's format.

    Example:
        >>> engine.save({"model": model.state_dict(), "epoch": 3}, "ckpt.safetensors")  # doctest: +SKIP
        >>> engine.load("ckpt.safetensors")["epoch"]  # doctest: +SKIP
        3
        >>> engine.save(model.state_dict(), "model.pt")  # torch.load("model.pt") reads it  # doctest: +SKIP
        >>> engine.save(model, "whole.pt")  # engine.load("whole.pt", weights_only=False)  # doctest: +SKIP
    """
    if pickle_module is not None:
        raise ValueError("engine.save never pickles arbitrary objects: pickle_module is not supported")
    if pickle_protocol not in (None, 2):
        raise ValueError("engine.save writes PyTorch's format with pickle protocol 2 only")
    torch_format = _wants_torch_format(f, format, _use_new_zipfile_serialization)
    if not torch_format:
        try:
            data = dumps(obj)
        except _NotPlainData:
            if format == "safetensors":
                raise
            torch_format = True  # a module, an optimizer, any object: pickled, as torch.save does
    if torch_format:
        from engine import _torch_format

        data = _torch_format.dumps(obj)
    if hasattr(f, "write"):
        f.write(data)
        return
    _write_atomically(os.fspath(f), data)


def _wants_torch_format(f, format, use_new_zipfile) -> bool:
    if format not in (None, "torch", "safetensors"):
        raise ValueError(f"engine.save format must be 'torch' or 'safetensors', got {format!r}")
    if use_new_zipfile is False:
        raise ValueError("engine.save does not write PyTorch's legacy (pre-1.6) format; use "
                         "_use_new_zipfile_serialization=True or format='torch'")
    if format is not None:
        if use_new_zipfile and format != "torch":
            raise ValueError("_use_new_zipfile_serialization=True asks for PyTorch's format, but format="
                             f"{format!r}")
        return format == "torch"
    if use_new_zipfile:
        return True
    if hasattr(f, "write"):
        return False
    return os.fspath(f).lower().endswith(TORCH_SUFFIXES)


def dumps(obj) -> bytes:
    """The safetensors bytes ``engine.save`` writes for ``obj``."""
    writer = _Writer()
    if _is_flat_state_dict(obj):
        tree = {name: writer.tensor(value, name) for name, value in obj.items()}
    else:
        tree = writer.encode(obj, "")
    metadata = {"format": "pt", FORMAT_KEY: FORMAT_VERSION, TREE_KEY: json.dumps(tree, allow_nan=False)}
    specs = {name: TensorSpec(dtype=a.dtype.name, shape=a.shape, data_ptr=a.ctypes.data, data_len=a.nbytes)
             for name, a in writer.arrays.items()}
    return bytes(serialize(specs, metadata=metadata))


def _is_flat_state_dict(obj) -> bool:
    from engine.tensor import Tensor

    return (isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and not k.startswith("$") for k in obj)
            and all(isinstance(v, Tensor) for v in obj.values()))


class _Writer:
    """Collects arrays under unique names while turning the object into a JSON tree."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.names: dict[int, str] = {}
        self.keep: list = []  # the objects named above stay alive, so their ids stay unique

    def _add(self, source, array: np.ndarray, path: str) -> str:
        name = self.names.get(id(source))
        if name is not None:
            return name
        name = path or "tensor"
        n = 1
        while name in self.arrays:
            name = f"{path or 'tensor'}#{n}"
            n += 1
        if array.dtype.kind == "O":
            raise TypeError(f"engine.save can't store an object array at {path!r}")
        # NOTE: not np.ascontiguousarray, which turns a 0-dim array into a 1-dim one.
        self.arrays[name] = array if array.flags.c_contiguous else array.copy(order="C")
        self.names[id(source)] = name
        self.keep.append(source)
        return name

    def tensor(self, t, path: str) -> dict:
        from engine import backend

        array = backend.to_numpy(t._data)
        if array.dtype.kind == "c":  # NOTE: safetensors has no complex128: complex is stored as (real, imag) pairs
            array = np.stack([array.real, array.imag], axis=-1)
        node = {"$tensor": self._add(t, array, path)}
        if array.dtype.kind == "f" and t._dtype.is_complex:
            node["complex"] = True
        if t._device.type != "cpu":
            node["device"] = str(t._device)
        if t._requires_grad:
            node["requires_grad"] = True
        if type(t).__name__ == "Parameter":
            node["parameter"] = True
        if t.is_quantized:  # int repr as the tensor, (scale, zero_point[, axis]) beside it
            node["quantized"] = {"dtype": t._dtype.name, "scales": t._scales, "zero_points": t._zero_points,
                                 "axis": t._axis, "qscheme": t._qscheme.name}
        return node

    def encode(self, value, path: str):
        from engine.device import device as device_type
        from engine.dtypes import dtype as dtype_type
        from engine.tensor import Tensor

        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, Tensor):
            return self.tensor(value, path)
        if isinstance(value, np.ndarray):
            return {"$ndarray": self._add(value, value, path)}
        if isinstance(value, np.generic):
            return self.encode(value.item(), path)
        if isinstance(value, bytes | bytearray):
            return {"$bytes": self._add(value, np.frombuffer(bytes(value), dtype=np.uint8), path)}
        if isinstance(value, dtype_type):
            return {"$dtype": value.name}
        if isinstance(value, device_type):
            return {"$device": str(value)}
        if isinstance(value, dict):
            return self._encode_dict(value, path)
        if isinstance(value, list):
            return [self.encode(v, _join(path, i)) for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, _join(path, i)) for i, v in enumerate(value)]}
        if isinstance(value, set | frozenset):
            return {"$set": [self.encode(v, _join(path, i)) for i, v in enumerate(value)]}
        raise _NotPlainData(f"engine.save can't store {type(value).__name__} at {path or 'the top level'!r} in "
                            "safetensors: only tensors, arrays, numbers, strings, bytes, None and lists/tuples/dicts "
                            "of them (save other objects in PyTorch's format: format='torch' or no format)")

    def _encode_dict(self, value: dict, path: str):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: self.encode(v, _join(path, k)) for k, v in value.items()}
        return {"$dict": [[self.encode(k, path), self.encode(v, _join(path, k))] for k, v in value.items()]}


class _NotPlainData(TypeError):
    """The object holds something safetensors can't (a module, any class): ``save`` pickles it instead."""


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _write_atomically(path: str, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# ----- load --------------------------------------------------------------------------------------
def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **kwargs):
    """Load what ``engine.save`` wrote, any safetensors file (as ``{name: tensor}``) or a PyTorch checkpoint.

    Args:
        f: a path or a binary file object.
        map_location: where tensors go: a device (``"cpu"``), a dict mapping saved devices to new
            ones (``{"cuda:0": "cpu"}``) or ``fn(tensor, saved_device) -> tensor``. By default
            each tensor returns to the device it was saved from.
        weights_only: ``True`` by default, as in PyTorch >= 2.6: a PyTorch-format checkpoint
            (``torch.save``'s or ``engine.save``'s zip, or the legacy format) may hold only tensors,
            parameters, dtypes, devices, ``torch.Size``, containers and plain values; any other
            object raises ``pickle.UnpicklingError`` naming it, and nothing in the file runs
            (classes you trust can be allowed with ``engine.serialization.add_safe_globals``).
            ``False`` unpickles everything (a whole saved module), which can run any code the
            file holds: only for files from a source you trust. Safetensors files never run code.

    Example:
        >>> state = engine.load("model.safetensors", map_location="cpu")  # doctest: +SKIP
        >>> model = engine.load("whole.pt", weights_only=False)  # a trusted file  # doctest: +SKIP
    """
    if pickle_module is not None:
        raise ValueError("engine.load never runs an arbitrary unpickler: pickle_module is not supported")
    if hasattr(f, "read"):
        data = bytearray(f.read())
    else:
        with open(os.fspath(f), "rb") as handle:
            data = bytearray(handle.read())
    return loads(data, map_location, weights_only=weights_only is None or bool(weights_only))


def loads(data, map_location=None, *, weights_only: bool = True):
    """Decode bytes written by ``engine.save`` (or any safetensors bytes, or a PyTorch checkpoint)."""
    if not _looks_like_safetensors(data):
        from engine import _torch_format

        if _torch_format.is_zip(data) or _torch_format.is_pickle(data) or _torch_format.is_tar(data):
            return _torch_format.load(data, map_location, weights_only)
    arrays, metadata = _read_safetensors(data)
    reader = _Reader(arrays, map_location)
    tree = metadata.get(TREE_KEY)
    if tree is None:
        return {name: reader.tensor({"$tensor": name}) for name in arrays}
    try:
        decoded = json.loads(tree)
    except ValueError as exc:
        raise ValueError(f"not an engine.save file: its {TREE_KEY} metadata is not JSON ({exc})") from None
    return reader.decode(decoded)


def _looks_like_safetensors(data) -> bool:
    """A little-endian header length that fits, then a JSON object (a zip or pickle never starts so)."""
    if len(data) < 9:
        return False
    (header_len,) = struct.unpack("<Q", bytes(data[:8]))
    return header_len <= len(data) - 8 and data[8] == ord("{")


def _read_safetensors(data: bytearray) -> tuple[dict, dict]:
    """Arrays (views into ``data``) and metadata of a safetensors buffer, validated."""
    if len(data) < 8:
        raise ValueError("not a safetensors file: too short")
    (header_len,) = struct.unpack("<Q", bytes(data[:8]))
    if header_len > min(_MAX_HEADER, len(data) - 8):
        raise ValueError("not a safetensors file, nor a PyTorch checkpoint (engine.load reads safetensors "
                         "files and torch.save's zip and legacy formats)")
    try:
        header = json.loads(bytes(data[8:8 + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("corrupt safetensors file: __metadata__ must map strings to strings")
    start = 8 + header_len
    buffer = memoryview(data)
    arrays = {}
    for name, info in header.items():
        try:
            dtype = bfloat16.np if info["dtype"] == "BF16" else _DTYPES[info["dtype"]]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"corrupt or unsupported safetensors entry {name!r}: {info!r}") from None
        count = math.prod(shape)
        if begin < 0 or end - begin != count * dtype.itemsize or start + end > len(data) or min(shape, default=0) < 0:
            raise ValueError(f"corrupt safetensors file: tensor {name!r} does not fit its data offsets")
        arrays[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=start + begin).reshape(shape)
    return arrays, metadata


class _Reader:
    """Turns the JSON tree back into Python values, looking tensors up by name."""

    _TAGS = ("$tensor", "$ndarray", "$bytes", "$float", "$tuple", "$set", "$dict", "$dtype", "$device")

    def __init__(self, arrays: dict, map_location):
        self.arrays = arrays
        self.map_location = map_location
        self.made: dict[str, object] = {}

    def _array(self, name) -> np.ndarray:
        if not isinstance(name, str) or name not in self.arrays:
            raise ValueError(f"corrupt engine.save file: it refers to a missing tensor {name!r}")
        return self.arrays[name]

    def tensor(self, node: dict):
        name = node["$tensor"]
        key = (name, bool(node.get("requires_grad")), bool(node.get("parameter")))
        if key in self.made:
            return self.made[key]
        from engine.device import CPU
        from engine.dtypes import from_numpy_dtype
        from engine.tensor import _make

        array = self._array(name)
        if node.get("complex"):
            if array.ndim == 0 or array.shape[-1] != 2 or array.dtype.kind != "f":
                raise ValueError(f"corrupt engine.save file: complex tensor {name!r} is not stored as (real, imag) "
                                 "pairs")
            array = np.ascontiguousarray(array).view(np.result_type(array.dtype, np.complex64))[..., 0]
        t = _make(array, from_numpy_dtype(array.dtype), CPU)
        if "quantized" in node:
            from engine.ao.quantization.qtensor import qtensor_from_meta

            t = qtensor_from_meta(array, node["quantized"])
        t = self._place(t, node.get("device", "cpu"))
        if node.get("parameter"):
            t = _as_parameter(t, bool(node.get("requires_grad")))
        elif node.get("requires_grad"):
            t.requires_grad_(True)
        self.made[key] = t
        return t

    def _place(self, t, saved: str):
        from engine.device import as_device

        location = self.map_location
        if callable(location) and not isinstance(location, str | dict):
            return location(t, saved)
        if isinstance(location, dict):
            target = location.get(saved, saved)
        elif location is not None:
            target = location
        else:
            target = saved
        target = as_device(target)
        if target.type == "cpu":
            return t
        from engine import backend

        if not backend.cuda_available():
            raise RuntimeError("Attempting to deserialize object on a CUDA device but CUDA is not available. "
                               "Use engine.load(..., map_location='cpu') to load it on the CPU.")
        return t.to(target)

    def decode(self, node):
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            raise ValueError(f"corrupt engine.save file: unexpected JSON value {node!r}")
        tag = next((k for k in node if k.startswith("$")), None)
        if tag is None:
            return {k: self.decode(v) for k, v in node.items()}
        if tag not in self._TAGS:
            raise ValueError(f"corrupt or unsupported engine.save file: unknown entry {tag!r}")
        value = node[tag]
        if tag == "$tensor":
            return self.tensor(node)
        if tag == "$ndarray":
            return self._array(value)
        if tag == "$bytes":
            return self._array(value).tobytes()
        if tag == "$float":
            if value not in ("inf", "-inf", "nan"):
                raise ValueError(f"corrupt engine.save file: bad float {value!r}")
            return float(value)
        if tag == "$tuple":
            return tuple(self.decode(v) for v in value)
        if tag == "$set":
            return {self.decode(v) for v in value}
        if tag == "$dtype":
            from engine.dtypes import as_dtype

            return as_dtype(str(value))
        if tag == "$device":
            from engine.device import as_device

            return as_device(str(value))
        return {self.decode(k): self.decode(v) for k, v in value}


def _as_parameter(t, requires_grad: bool):
    try:
        from engine.nn.parameter import Parameter
    except ImportError:
        return t.requires_grad_(requires_grad) if requires_grad else t
    return Parameter(t, requires_grad=requires_grad)


from engine._torch_format import (  # noqa: E402 - torch.serialization's allow-list API, for PyTorch checkpoints
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    safe_globals,
)

__all__ = ["add_safe_globals", "clear_safe_globals", "dumps", "get_safe_globals", "load", "loads", "safe_globals",
           "save"]
