"""The pointwise ops the backend fuses: a scalar expression (numba kernels), a NumPy form (replay
without numba) and a CUDA C expression (CuPy kernels), side by side, one row per op.

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

# NOTE: math.erf is one libm call per element in numba (~10 ns, and it keeps the loop scalar); GELU's forward and
# backward each spend most of their time there. float32 kernels use a branch-free rational form instead:
# erf(x) = x * P(x^2) / Q(x^2) for |x| < 4, else +-1 (erf(4) rounds to 1 in float32), evaluated in float64.
# P (degree 6) and Q (degree 5) are our least-squares fit of erf(x)/x on [0, 4] in relative error (reweighted
# by the previous Q until it settles): relative error < 5e-9, so the float32 result is within 1 ulp of the
# correctly rounded erf (1.3% of inputs on a 1e-5 grid over [-6, 6] differ, by 1 ulp); NaN stays NaN.
_ERF32_P = (1.1283791694434897, 0.18514520220553246, 0.0543059628859769, 0.003846890654155999,
            0.00037942182908757183, 4.6805826442991185e-06, -1.3173454390761226e-08)
_ERF32_Q = (1.0, 0.49741407898558265, 0.11393156523331129, 0.015455887417477004, 0.001306779928775607,
            6.307307387005925e-05)


def _horner_source(coefficients, t: str) -> str:
    expr = repr(coefficients[-1])
    for c in coefficients[-2::-1]:
        expr = f"({expr} * {t} + {c!r})"
    return expr


def erf32_source(x: str, tmp: str) -> tuple[list[str], str]:
    """Statements and the final expression of erf(``x``) for a float32 result, with locals named ``tmp`` + c/s."""
    c, t = f"{tmp}c", f"{tmp}s"
    lines = [f"{c} = {x}", f"{t} = {c} * {c}",
             f"{c} = {c} * {_horner_source(_ERF32_P, t)} / {_horner_source(_ERF32_Q, t)} if not abs({c}) >= 4.0 "
             f"else math.copysign(1.0, {c})"]
    return lines, c


def _gelu32_source(x: str, tmp: str) -> tuple[list[str], str]:
    lines, erf = erf32_source(f"{x} * {_SQRT1_2!r}", tmp)
    return lines, f"0.5 * {x} * (1.0 + {erf})"


# NOTE: C's % and / truncate toward zero; NumPy's remainder and floor_divide floor (float form, integer form).
_CUDA_MOD = ("({0} - floor({0} / {1}) * {1})",
             "((({0} % {1}) != 0 && ((({0} % {1}) < 0) != ({1} < 0))) ? ({0} % {1}) + {1} : ({0} % {1}))")
_CUDA_FLOORDIV = ("floor({0} / {1})", "({0} / {1} - ((({0} % {1}) != 0 && ((({0} % {1}) < 0) != ({1} < 0))) ? 1 : 0))")
_CUDA_ABS = ("fabs({0})", "({0} < 0 ? -{0} : {0})")

# A CUDA template names its operands {0}, {1}... (already cast to the op's compute type) and the result's C type
# {R}; a pair is (float form, integer form).
# name: (numba scalar template, NumPy ufunc name or helper function, CUDA C template or None)
OPS: dict[str, tuple[str, object, object]] = {
    "add": ("{0} + {1}", "add", "{0} + {1}"),
    "sub": ("{0} - {1}", "subtract", "{0} - {1}"),
    "mul": ("{0} * {1}", "multiply", "{0} * {1}"),
    "div": ("{0} / {1}", "true_divide", "{0} / {1}"),
    "pow": ("{0} ** {1}", "power", "pow({0}, {1})"),
    "mod": ("{0} % {1}", "remainder", _CUDA_MOD),
    "floordiv": ("{0} // {1}", "floor_divide", _CUDA_FLOORDIV),
    "maximum": ("max({0}, {1})", "maximum", "(({0} > {1} || {0} != {0}) ? {0} : {1})"),
    "minimum": ("min({0}, {1})", "minimum", "(({0} < {1} || {0} != {0}) ? {0} : {1})"),
    "neg": ("-{0}", "negative", "-{0}"),
    "abs": ("abs({0})", "absolute", _CUDA_ABS),
    "exp": ("math.exp({0})", "exp", "exp({0})"),
    "expm1": ("math.expm1({0})", "expm1", "expm1({0})"),
    "log": ("math.log({0})", "log", "log({0})"),
    "log1p": ("math.log1p({0})", "log1p", "log1p({0})"),
    "sqrt": ("math.sqrt({0})", "sqrt", "sqrt({0})"),
    "rsqrt": ("1.0 / math.sqrt({0})", _np_rsqrt, "({R})1 / sqrt({0})"),
    "sin": ("math.sin({0})", "sin", "sin({0})"),
    "cos": ("math.cos({0})", "cos", "cos({0})"),
    "tanh": ("math.tanh({0})", "tanh", "tanh({0})"),
    "erf": ("math.erf({0})", _np_erf, "erf({0})"),
    "floor": ("math.floor({0})", "floor", "floor({0})"),
    "ceil": ("math.ceil({0})", "ceil", "ceil({0})"),
    "square": ("{0} * {0}", _np_square, "{0} * {0}"),
    "reciprocal": ("1.0 / {0}", _np_reciprocal, "({R})1 / {0}"),
    "sign": ("(1.0 if {0} > 0 else (-1.0 if {0} < 0 else 0.0))", _np_sign,
             "({0} > 0 ? ({R})1 : ({0} < 0 ? ({R})-1 : ({R})0))"),
    "sigmoid": ("1.0 / (1.0 + math.exp(-{0}))", _np_sigmoid, "({R})1 / (({R})1 + exp(-{0}))"),
    "relu": ("({0} if not {0} <= 0 else 0.0)", _np_relu, "({0} <= 0 ? ({R})0 : {0})"),  # NOTE: NaN stays NaN
    "silu": ("{0} / (1.0 + math.exp(-{0}))", _np_silu, "{0} / (({R})1 + exp(-{0}))"),
    "gelu": (f"0.5 * {{0}} * (1.0 + math.erf({{0}} * {_SQRT1_2!r}))", _np_gelu,
             "({R})0.5 * {0} * (({R})1 + erf({0} * ({R})0.7071067811865476))"),
    "gelu_tanh": (f"0.5 * {{0}} * (1.0 + math.tanh({_SQRT_2_PI!r} * ({{0}} + 0.044715 * {{0}} * {{0}} * {{0}})))",
                  _np_gelu_tanh, "({R})0.5 * {0} * (({R})1 + tanh(({R})0.7978845608028654 * "
                                 "({0} + ({R})0.044715 * {0} * {0} * {0})))"),
    "leaky_relu": ("({0} if {0} > 0 else {0} * {1})", _np_leaky_relu, "({0} > 0 ? {0} : {0} * {1})"),
    "where": ("({1} if {0} else {2})", _np_where, "({0} ? {1} : {2})"),
    "keep": ("({2} if {0} >= {1} else 0.0)", _np_keep, "({0} >= {1} ? {2} : ({R})0)"),  # dropout's keep mask
    "gt": ("{0} > {1}", "greater", "{0} > {1}"),
    "ge": ("{0} >= {1}", "greater_equal", "{0} >= {1}"),
    "lt": ("{0} < {1}", "less", "{0} < {1}"),
    "le": ("{0} <= {1}", "less_equal", "{0} <= {1}"),
    "eq": ("{0} == {1}", "equal", "{0} == {1}"),
    "ne": ("{0} != {1}", "not_equal", "{0} != {1}"),
    "logical_not": ("not {0}", "logical_not", "!{0}"),
    "logical_and": ("{0} and {1}", "logical_and", "{0} && {1}"),
    "logical_or": ("{0} or {1}", "logical_or", "{0} || {1}"),
    "cast": ("{0}", _np_cast, "{0}"),
}

# float32 forms of scalar ops (operands: local names or literals): statements, then the result's expression
FLOAT32_SCALAR = {"erf": lambda ops, tmp: erf32_source(ops[0], tmp), "gelu": lambda ops, tmp: _gelu32_source(ops[0], tmp)}
