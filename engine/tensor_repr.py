"""PyTorch-style ``repr`` of tensors: ``tensor([1., 2.], requires_grad=True)``."""

from __future__ import annotations

import math

import numpy as np

from engine import backend
from engine.dtypes import FLOAT, bool_, get_default_dtype, int64

_THRESHOLD = 1000  # more elements than this are summarized with "..."
_EDGE_ITEMS = 3
_LINE_WIDTH = 80
_PRECISION = 4
_SCI_MODE = None  # None: chosen from the values; True/False: forced (set_printoptions(sci_mode=))
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, math.inf, 3, 80)}


class _Formatter:
    """Chooses one format (integer, fixed or scientific) and width for all elements."""

    def __init__(self, values: np.ndarray, is_float: bool):
        self.is_float = is_float
        self.int_mode = True
        self.sci_mode = False
        if not is_float:
            self.width = max((len(str(v)) for v in values.tolist()), default=1)
            return
        finite = values[np.isfinite(values)]
        nonzero = np.abs(finite[finite != 0])
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        if nonzero.size:
            high, low = float(nonzero.max()), float(nonzero.min())
            self.sci_mode = high / low > 1000.0 or high > 1e8 or (not self.int_mode and low < 1e-4)
        if _SCI_MODE is not None:
            self.sci_mode = _SCI_MODE
        self.width = max((len(self.format(float(v))) for v in values), default=1)

    def format(self, value) -> str:
        if not self.is_float:
            return str(value)
        if not math.isfinite(value):
            return str(value).replace("inf", "inf").lower()
        if self.sci_mode:
            return f"{value:.{_PRECISION}e}"
        if self.int_mode:
            return f"{value:.0f}."
        return f"{value:.{_PRECISION}f}"

    def pad(self, value) -> str:
        return self.format(value).rjust(self.width)


class _ComplexFormatter:
    """Formats ``a+bj`` with one float format for the real parts and one for the imaginary parts."""

    is_float = True

    def __init__(self, values: np.ndarray):
        self.real = _Formatter(values.real.astype(np.float64), True)
        self.imag = _Formatter(np.abs(values.imag.astype(np.float64)), True)
        self.width = max((len(self.format(complex(v))) for v in values), default=1)

    def format(self, value) -> str:
        value = complex(value)
        sign = "-" if math.copysign(1.0, value.imag) < 0 else "+"
        return f"{self.real.pad(value.real)}{sign}{self.imag.format(abs(value.imag))}j"

    def pad(self, value) -> str:
        return self.format(value).rjust(self.width)


def _summary_values(array: np.ndarray, summarize: bool) -> np.ndarray:
    if not summarize or array.ndim == 0:
        return array.reshape(-1)
    if array.shape[0] > 2 * _EDGE_ITEMS:
        parts = [array[:_EDGE_ITEMS], array[-_EDGE_ITEMS:]]
    else:
        parts = [array]
    return np.concatenate([_summary_values(p[i], summarize) for p in parts for i in range(p.shape[0])]
                          or [np.zeros(0, array.dtype)])


def _format_array(array: np.ndarray, formatter: _Formatter, indent: int, summarize: bool) -> str:
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        values = array.tolist()
        if summarize and len(values) > 2 * _EDGE_ITEMS:
            items = [formatter.pad(v) for v in values[:_EDGE_ITEMS]] + [" ..."] + \
                    [formatter.pad(v) for v in values[-_EDGE_ITEMS:]]
        else:
            items = [formatter.pad(v) for v in values]
        per_line = max(1, math.floor((_LINE_WIDTH - indent) / (formatter.width + 2)))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"
    rows = range(array.shape[0])
    if summarize and array.shape[0] > 2 * _EDGE_ITEMS:
        chosen = [*range(_EDGE_ITEMS), None, *range(array.shape[0] - _EDGE_ITEMS, array.shape[0])]
    else:
        chosen = list(rows)
    parts = ["..." if i is None else _format_array(array[i], formatter, indent + 1, summarize) for i in chosen]
    separator = "," + "\n" * (array.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def tensor_repr(t) -> str:
    array = backend.to_numpy(t._data)
    dtype = t._dtype
    is_float = dtype.category == FLOAT
    prefix = "tensor("
    suffixes = []
    if t._device.type != "cpu":
        suffixes.append(f"device='{t._device}'")
    if array.size == 0:
        body = "[]"
        if array.shape != (0,):
            suffixes.append(f"size={tuple(array.shape)}")
    else:
        summarize = array.size > _THRESHOLD
        shown = array.astype(np.float64) if is_float else array
        values = _summary_values(shown, summarize)
        if dtype.is_complex:
            formatter = _ComplexFormatter(values)
        else:
            formatter = _Formatter(values, is_float) if dtype is not bool_ else _Formatter(values, False)
        body = _format_array(shown, formatter, len(prefix), summarize)
    default_shown = dtype in (get_default_dtype(), get_default_dtype().to_complex(), int64, bool_)
    if not default_shown:
        suffixes.append(f"dtype={dtype!r}")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._requires_grad:
        suffixes.append("requires_grad=True")
    return prefix + body + "".join(", " + s for s in suffixes) + ")"


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """PyTorch's print options: digits, the element count above which tensors are summarized, the items
    kept at each edge, the line width, a ``profile`` ("default", "short", "full") and a forced ``sci_mode``."""
    global _PRECISION, _THRESHOLD, _EDGE_ITEMS, _LINE_WIDTH, _SCI_MODE
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"profile must be one of {sorted(_PROFILES)}, got {profile!r}")
        _PRECISION, _THRESHOLD, _EDGE_ITEMS, _LINE_WIDTH = _PROFILES[profile]
    if precision is not None:
        _PRECISION = int(precision)
    if threshold is not None:
        _THRESHOLD = threshold
    if edgeitems is not None:
        _EDGE_ITEMS = int(edgeitems)
    if linewidth is not None:
        _LINE_WIDTH = int(linewidth)
    _SCI_MODE = sci_mode
