"""The pointwise ops the backend fuses: a scalar expression (numba kernels) and a NumPy form (replay
without numba), side by side, one row per op.

A scalar template names its operands ``{0}``, ``{1}``...; they are always plain local names or
literals, so a template may repeat an operand. The NumPy form is a ufunc (called with ``out=`` and
``casting='unsafe'``) or a function ``fn(out, *args)`` of this module.
"""

from __future__ import annotations

import math

import numpy as np

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _np_erf(out, x):
    from engine.ops.unary import erf_array

    np.copyto(out, erf_array(np.asarray(x), np), casting="unsafe")


def _np_rsqrt(out, x):
    np.sqrt(x, out=out, casting="unsafe")
    np.divide(1.0, out, out=out)


def _np_sigmoid(out, x):
    np.negative(x, out=out, casting="unsafe")
    np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    np.divide(1.0, out, out=out)


def _np_relu(out, x):
    np.maximum(x, 0, out=out, casting="unsafe")


def _np_silu(out, x):
    _np_sigmoid(out, x)
    np.multiply(out, x, out=out, casting="unsafe")


def _np_gelu(out, x):
    _np_erf(out, np.multiply(x, _SQRT1_2))
    np.add(out, 1.0, out=out)
    np.multiply(out, x, out=out, casting="unsafe")
    np.multiply(out, 0.5, out=out)


def _np_gelu_tanh(out, x):
    inner = np.multiply(np.add(x, np.multiply(np.multiply(np.multiply(x, x), x), 0.044715)), _SQRT_2_PI)
    np.tanh(inner, out=out, casting="unsafe")
    np.add(out, 1.0, out=out)
    np.multiply(out, x, out=out, casting="unsafe")
    np.multiply(out, 0.5, out=out)


def _np_where(out, c, a, b):
    np.copyto(out, np.where(c, a, b), casting="unsafe")


def _np_cast(out, x):
    np.copyto(out, x, casting="unsafe")


def _np_sign(out, x):
    np.sign(x, out=out, casting="unsafe")


def _np_leaky_relu(out, x, slope):
    np.copyto(out, np.where(np.greater(x, 0), x, np.multiply(x, slope)), casting="unsafe")


def _np_keep(out, u, p, scale):
    np.copyto(out, np.where(np.greater_equal(u, p), scale, 0.0), casting="unsafe")


def _np_square(out, x):
    np.multiply(x, x, out=out, casting="unsafe")


def _np_reciprocal(out, x):
    np.divide(1.0, x, out=out, casting="unsafe")


# NOTE: numba calls libm once per element for these (no SVML in llvmlite's LLVM): ~20 ns, against ~1-2 ns for
# NumPy's SIMD loops. The scheduler runs them as NumPy ufunc steps into planned buffers and fuses around them.
UFUNC_STEPS = frozenset({"exp", "expm1", "log", "log1p", "tanh", "sin", "cos"})

# name: (scalar template, NumPy ufunc name or helper function)
OPS: dict[str, tuple[str, object]] = {
    "add": ("{0} + {1}", "add"),
    "sub": ("{0} - {1}", "subtract"),
    "mul": ("{0} * {1}", "multiply"),
    "div": ("{0} / {1}", "true_divide"),
    "pow": ("{0} ** {1}", "power"),
    "mod": ("{0} % {1}", "remainder"),
    "floordiv": ("{0} // {1}", "floor_divide"),
    "maximum": ("max({0}, {1})", "maximum"),
    "minimum": ("min({0}, {1})", "minimum"),
    "neg": ("-{0}", "negative"),
    "abs": ("abs({0})", "absolute"),
    "exp": ("math.exp({0})", "exp"),
    "expm1": ("math.expm1({0})", "expm1"),
    "log": ("math.log({0})", "log"),
    "log1p": ("math.log1p({0})", "log1p"),
    "sqrt": ("math.sqrt({0})", "sqrt"),
    "rsqrt": ("1.0 / math.sqrt({0})", _np_rsqrt),
    "sin": ("math.sin({0})", "sin"),
    "cos": ("math.cos({0})", "cos"),
    "tanh": ("math.tanh({0})", "tanh"),
    "erf": ("math.erf({0})", _np_erf),
    "floor": ("math.floor({0})", "floor"),
    "ceil": ("math.ceil({0})", "ceil"),
    "square": ("{0} * {0}", _np_square),
    "reciprocal": ("1.0 / {0}", _np_reciprocal),
    "sign": ("(1.0 if {0} > 0 else (-1.0 if {0} < 0 else 0.0))", _np_sign),
    "sigmoid": ("1.0 / (1.0 + math.exp(-{0}))", _np_sigmoid),
    "relu": ("({0} if not {0} <= 0 else 0.0)", _np_relu),  # NOTE: NaN stays NaN, as np.maximum
    "silu": ("{0} / (1.0 + math.exp(-{0}))", _np_silu),
    "gelu": (f"0.5 * {{0}} * (1.0 + math.erf({{0}} * {_SQRT1_2!r}))", _np_gelu),
    "gelu_tanh": (f"0.5 * {{0}} * (1.0 + math.tanh({_SQRT_2_PI!r} * ({{0}} + 0.044715 * {{0}} * {{0}} * {{0}})))",
                  _np_gelu_tanh),
    "leaky_relu": ("({0} if {0} > 0 else {0} * {1})", _np_leaky_relu),
    "where": ("({1} if {0} else {2})", _np_where),
    "keep": ("({2} if {0} >= {1} else 0.0)", _np_keep),  # dropout's scaled keep mask from uniforms
    "gt": ("{0} > {1}", "greater"),
    "ge": ("{0} >= {1}", "greater_equal"),
    "lt": ("{0} < {1}", "less"),
    "le": ("{0} <= {1}", "less_equal"),
    "eq": ("{0} == {1}", "equal"),
    "ne": ("{0} != {1}", "not_equal"),
    "logical_not": ("not {0}", "logical_not"),
    "logical_and": ("{0} and {1}", "logical_and"),
    "logical_or": ("{0} or {1}", "logical_or"),
    "cast": ("{0}", _np_cast),
}
