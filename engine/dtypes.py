"""Tensor dtypes and PyTorch's type-promotion rules."""

from __future__ import annotations

import sys

import numpy as np


class dtype:
    """A tensor element type, backed by a NumPy dtype.

    Example:
        >>> import engine
        >>> engine.float32.is_floating_point
        True
    """

    __slots__ = ("category", "differentiable", "is_complex", "is_floating_point", "is_signed", "itemsize", "name",
                 "np")

    def __init__(self, name: str, np_dtype, category: int, is_signed: bool, itemsize: int | None = None):
        self.name = name
        if np_dtype is not None:
            self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize if itemsize is None else itemsize
        # NOTE: category orders bool < integer < floating < complex, as in PyTorch's promotion.
        self.category = category
        self.is_floating_point = category == FLOAT
        self.is_complex = category == COMPLEX
        self.differentiable = category >= FLOAT  # may require grad (floating and complex)
        self.is_signed = is_signed

    def to_real(self) -> dtype:
        """The real dtype of a complex one (complex64 -> float32); other dtypes are their own."""
        return _COMPLEX_TO_REAL.get(self, self)

    def to_complex(self) -> dtype:
        """The complex dtype of a floating one (float32 -> complex64); complex dtypes are their own."""
        if self.is_complex:
            return self
        if not self.is_floating_point:
            raise RuntimeError(f"to_complex is only defined for floating and complex dtypes, got {self.name}")
        return complex128 if self.itemsize == 8 else complex64

    def __repr__(self) -> str:
        return f"engine.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


class _MlDtype(dtype):
    """A dtype whose NumPy type comes from ml_dtypes, imported on first use (it costs ~0.7 s of CPU at
    every process start, and most jobs never touch bfloat16)."""

    __slots__ = ()

    def __getattr__(self, name: str):
        if name != "np":
            raise AttributeError(name)
        import ml_dtypes

        self.np = np.dtype(getattr(ml_dtypes, self.name))
        FROM_NUMPY[self.np] = self
        return self.np


class _ByNumpyDtype(dict):
    """NumPy dtype -> engine dtype. ``[key]`` also recognises an ml_dtypes type another library made before
    the engine's was loaded (registering it); ``get`` and ``in`` stay dict's own, fast, and miss it until then."""

    def __missing__(self, key):
        lazy = _LAZY.get(getattr(key, "name", None))
        if lazy is None or lazy.np != key:
            raise KeyError(key)
        return lazy


BOOL, INT, FLOAT, COMPLEX = 0, 1, 2, 3

bool_ = dtype("bool", np.bool_, BOOL, False)
uint8 = dtype("uint8", np.uint8, INT, False)
int8 = dtype("int8", np.int8, INT, True)
int16 = dtype("int16", np.int16, INT, True)
int32 = dtype("int32", np.int32, INT, True)
int64 = dtype("int64", np.int64, INT, True)
float16 = dtype("float16", np.float16, FLOAT, True)
bfloat16 = _MlDtype("bfloat16", None, FLOAT, True, itemsize=2)
float32 = dtype("float32", np.float32, FLOAT, True)
float64 = dtype("float64", np.float64, FLOAT, True)
complex64 = dtype("complex64", np.complex64, COMPLEX, True)
complex128 = dtype("complex128", np.complex128, COMPLEX, True)
_COMPLEX_TO_REAL = {complex64: float32, complex128: float64}

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64, complex64, complex128)
ALIASES = {"half": float16, "float": float32, "double": float64, "short": int16, "int": int32,
           "long": int64, "bool": bool_, "cfloat": complex64, "cdouble": complex128}

# Quantized dtypes: stored as their integer repr; outside ALL_DTYPES, so ordinary ops don't promote them.
qint8 = dtype("qint8", np.int8, INT, True)
quint8 = dtype("quint8", np.uint8, INT, False)
qint32 = dtype("qint32", np.int32, INT, True)
QUANTIZED_DTYPES = (qint8, quint8, qint32)

_BY_NAME = {d.name: d for d in ALL_DTYPES + QUANTIZED_DTYPES} | ALIASES
_LAZY = {bfloat16.name: bfloat16}
FROM_NUMPY: dict[np.dtype, dtype] = _ByNumpyDtype(
    {d.np: d for d in ALL_DTYPES if d.name not in _LAZY or "ml_dtypes" in sys.modules})


def _by_name(name: str) -> dtype:
    return _BY_NAME[name]


class _Defaults:
    float_dtype = float32


_defaults = _Defaults()


def get_default_dtype() -> dtype:
    """Return the dtype that Python floats and float factories produce."""
    return _defaults.float_dtype


def set_default_dtype(d: dtype) -> None:
    """Set the default floating dtype (float16, bfloat16, float32 or float64)."""
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _defaults.float_dtype = d


def from_numpy_dtype(np_dtype) -> dtype:
    """Map a NumPy dtype to an engine dtype, or raise TypeError."""
    try:
        return FROM_NUMPY[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"can't convert NumPy dtype {np_dtype} to an engine dtype; supported: "
                        f"{', '.join(d.name for d in ALL_DTYPES)}") from None


def as_dtype(d) -> dtype:
    """Accept an engine dtype, a NumPy dtype/type, a name, or the Python types float/int/bool."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return get_default_dtype()
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    return from_numpy_dtype(d)


def _promote_pair(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    if a.category != b.category:
        if (a.category == COMPLEX and b.category == FLOAT) or (b.category == COMPLEX and a.category == FLOAT):
            # NOTE: complex64 meets float64 in complex128: the real part keeps the wider precision.
            return max(a.to_real(), b.to_real(), key=lambda d: d.itemsize).to_complex()
        return a if a.category > b.category else b
    if a.category == COMPLEX:
        return a if a.itemsize > b.itemsize else b
    if a.category == FLOAT:
        if {a, b} == {float16, bfloat16}:
            return float32
        return a if a.itemsize > b.itemsize else b
    # integers: an unsigned and a signed type meet in a signed type wide enough for both
    if a.is_signed == b.is_signed:
        return a if a.itemsize > b.itemsize else b
    signed, unsigned = (a, b) if a.is_signed else (b, a)
    if signed.itemsize > unsigned.itemsize:
        return signed
    return {1: int16, 2: int32, 4: int64, 8: int64}[unsigned.itemsize]


_PROMOTION = {(a, b): _promote_pair(a, b) for a in ALL_DTYPES for b in ALL_DTYPES}


def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype both ``a`` and ``b`` convert to (``torch.promote_types``)."""
    return _PROMOTION[a, b]


def _combine_categories(higher: dtype | None, lower: dtype | None) -> dtype | None:
    # NOTE: a lower-priority operand (0-dim tensor, Python scalar) only changes the result
    # when it belongs to a higher category (bool < int < float < complex), as in PyTorch.
    if higher is None:
        return lower
    if lower is None or lower.category <= higher.category:
        return higher
    if lower.is_complex and higher.is_floating_point:
        return higher.to_complex()  # NOTE: float32 tensor + complex128 0-dim/scalar -> complex64, as PyTorch
    return lower


def scalar_dtype(value) -> dtype:
    """The dtype a Python scalar contributes to promotion."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, complex):
        return get_default_dtype().to_complex()
    return get_default_dtype()


def result_type_of(dims: list, zero_dims: list, scalars: list) -> dtype:
    """Promote dtypes grouped by priority: dimensioned tensors, 0-dim tensors, Python scalars."""
    groups = []
    for group in (dims, zero_dims, scalars):
        current = None
        for d in group:
            current = d if current is None else _PROMOTION[current, d]
        groups.append(current)
    return _combine_categories(groups[0], _combine_categories(groups[1], groups[2]))
