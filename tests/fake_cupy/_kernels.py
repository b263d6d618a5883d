"""``ElementwiseKernel`` / ``ReductionKernel`` (fake): the very CUDA C source a GPU compiles, evaluated with NumPy.

A small translator for the C subset fused kernels use: declarations and (compound) assignments separated by
``;``; arithmetic, comparisons, logic, bit operations and shifts with C's type promotion (``float * double`` is
double, ``unsigned long long + long long`` stays unsigned); the ternary operator; casts ``(float)x``; literals
with ``f``/``u``/``ll``/``ull`` suffixes; math functions (exp, log, tanh, sqrt, erf, max, min, ...); ``i`` (the
element index), ``_ind.size()``, ``raw`` parameters indexed as ``x[j]``. Anything else is refused with a clear
error, so a kernel the fake cannot read fails CI rather than being skipped.
"""

from __future__ import annotations

import math
import re

import numpy as np

from fake_cupy._core import ndarray, record, unwrap, wrap

_TYPES = {"float": np.float32, "double": np.float64, "half": np.float16, "float16": np.float16,
          "float32": np.float32, "float64": np.float64, "bool": np.bool_, "int": np.int32, "int32": np.int32,
          "int64": np.int64, "long long": np.int64, "ptrdiff_t": np.int64, "size_t": np.uint64,
          "unsigned int": np.uint32, "uint32": np.uint32, "unsigned long long": np.uint64, "uint64": np.uint64,
          "int8": np.int8, "uint8": np.uint8, "unsigned char": np.uint8, "signed char": np.int8}
_ERF = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    return _ERF(x).astype(x.dtype) if isinstance(x, np.ndarray) else type(x)(math.erf(x))


_FLOAT_FUNCS = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sqrt": np.sqrt, "erf": _erf,
                "log1p": np.log1p, "expm1": np.expm1, "cos": np.cos, "sin": np.sin, "fabs": np.abs, "abs": np.abs,
                "floor": np.floor, "ceil": np.ceil, "rsqrt": lambda x: 1 / np.sqrt(x), "isnan": np.isnan,
                "isinf": np.isinf, "isfinite": np.isfinite}
_FLOAT_FUNCS.update({name + "f": fn for name, fn in list(_FLOAT_FUNCS.items()) if name not in ("abs", "isnan")})
_BINARY_FUNCS = {"max": np.maximum, "min": np.minimum, "fmax": np.fmax, "fmin": np.fmin, "pow": np.power,
                 "powf": np.power, "fmaxf": np.fmax, "fminf": np.fmin, "atan2": np.arctan2}
_CONSTANTS = {"INFINITY": np.float32(np.inf), "CUDART_INF_F": np.float32(np.inf), "CUDART_INF": np.float64(np.inf),
              "NAN": np.float32(np.nan), "true": np.bool_(True), "false": np.bool_(False)}
_TOKEN = re.compile(r"\s*(?:(?P<num>0[xX][0-9a-fA-F]+[uUlL]*|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[fFuUlL]*)"
                    r"|(?P<name>[A-Za-z_]\w*)|(?P<op><<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||\+=|-=|\*=|/=|%=|&=|\|=|"
                    r"\^=|[-+*/%<>=!~&|^?:(),\[\].]))")
_PRECEDENCE = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, "<=": 7, ">": 7, ">=": 7,
               "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}


class KernelSourceError(NotImplementedError):
    """The fake's translator does not understand a piece of kernel source."""


def _tokens(source: str) -> list[str]:
    out, pos = [], 0
    source = source.strip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            raise KernelSourceError(f"fake cupy kernel: cannot read {source[pos:pos + 20]!r}")
        out.append(m.group(0).strip())
        pos = m.end()
    return out


def _literal(text: str):
    body = text.rstrip("fFuUlL")
    suffix = text[len(body):].lower()
    if body.lower().startswith("0x") or not any(c in body for c in ".eE"):
        if "f" in suffix:
            return np.float32(float(body))
        value = int(body, 0)
        if "u" in suffix:
            return np.uint64(value) if "l" in suffix or value >= 2**32 else np.uint32(value)
        return np.int64(value) if "l" in suffix or value >= 2**31 else np.int32(value)
    return np.float32(float(body)) if "f" in suffix else np.float64(float(body))


def _dtype(value) -> np.dtype:
    return value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype


def _common(a, b) -> np.dtype:
    """C's usual arithmetic conversions (half math is done in float, as CUDA's half operators promote)."""
    da, db = _dtype(a), _dtype(b)
    if da.kind == "f" or db.kind == "f":
        return np.dtype(np.float64) if np.float64 in (da, db) else np.dtype(np.float32)
    ranks = []
    for d in (da, db):
        d = np.dtype(np.int32) if d.itemsize < 4 or d.kind == "b" else d
        ranks.append(d)
    x, y = ranks
    if x.itemsize != y.itemsize:
        return x if x.itemsize > y.itemsize else y
    return x if x.kind == "u" else y


def _cast(value, dtype):
    return value.astype(dtype, copy=False) if isinstance(value, np.ndarray) else np.dtype(dtype).type(value)


def _binary(op: str, a, b):
    if op in ("&&", "||"):
        return (np.logical_and if op == "&&" else np.logical_or)(a, b)
    if op in ("<<", ">>"):
        left = _dtype(a) if _dtype(a).itemsize >= 4 else np.dtype(np.int32)
        a, b = _cast(a, left), _cast(b, left)
        return np.left_shift(a, b) if op == "<<" else np.right_shift(a, b)
    dtype = _common(a, b)
    a, b = _cast(a, dtype), _cast(b, dtype)
    with np.errstate(all="ignore"):
        if op == "/" and dtype.kind in "iu":
            q = np.floor_divide(a, b)
            return q + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0))).astype(dtype)
        if op == "%" and dtype.kind in "iu":
            return np.fmod(a, b)
        return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod, "&": np.bitwise_and,
                "|": np.bitwise_or, "^": np.bitwise_xor, "==": np.equal, "!=": np.not_equal, "<": np.less,
                "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op](a, b)


class _Parser:
    """Recursive descent over one expression; evaluates as it parses (the environment holds NumPy values)."""

    def __init__(self, tokens: list[str], env: dict, types: dict):
        self.t, self.p, self.env, self.types = tokens, 0, env, types

    def peek(self, k: int = 0):
        return self.t[self.p + k] if self.p + k < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise KernelSourceError(f"fake cupy kernel: expected {expected!r}, got {tok!r} in {' '.join(self.t)!r}")
        self.p += 1
        return tok

    def type_at(self, k: int = 0):
        """The type named by the tokens at ``p + k`` and how many tokens it spans, or (None, 0)."""
        for span in (3, 2, 1):
            words = self.t[self.p + k:self.p + k + span]
            name = " ".join(w for w in words if w != "const")
            if len(words) == span and all(re.fullmatch(r"[A-Za-z_]\w*", w) for w in words):
                if name in _TYPES:
                    return _TYPES[name], span
                if span == 1 and name in self.types:
                    return self.types[name], 1
        return None, 0

    def expression(self):
        cond = self.binary(1)
        if self.peek() == "?":
            self.take("?")
            yes = self.expression()
            self.take(":")
            no = self.expression()
            dtype = _common(yes, no)
            return np.where(cond, _cast(yes, dtype), _cast(no, dtype))
        return cond

    def binary(self, level: int):
        left = self.unary()
        while True:
            op = self.peek()
            prec = _PRECEDENCE.get(op or "")
            if prec is None or prec < level:
                return left
            self.take()
            right = self.binary(prec + 1)
            left = _binary(op, left, right)

    def unary(self):
        tok = self.peek()
        if tok in ("-", "+", "!", "~"):
            self.take()
            value = self.unary()
            if tok == "-":
                return np.negative(value)
            if tok == "!":
                return np.logical_not(value)
            return np.invert(value) if tok == "~" else value
        if tok == "(":
            dtype, span = self.type_at(1)
            if dtype is not None and self.peek(span + 1) == ")":
                self.p += span + 2
                return _cast(self.unary(), dtype)
        return self.postfix()

    def postfix(self):
        tok = self.take()
        if tok == "(":
            value = self.expression()
            self.take(")")
            return value
        if re.fullmatch(r"[\d.]\S*", tok):
            return _literal(tok)
        if tok in ("_ind", "_in_ind", "_out_ind"):
            self.take(".")
            self.take("size")
            self.take("(")
            self.take(")")
            return np.int64(self.env[tok])
        if self.peek() == "(":
            self.take("(")
            args = [self.expression()]
            while self.peek() == ",":
                self.take(",")
                args.append(self.expression())
            self.take(")")
            return _call(tok, args)
        if tok in self.env:
            value = self.env[tok]
            if self.peek() == "[":
                self.take("[")
                index = self.expression()
                self.take("]")
                return value.reshape(-1)[np.asarray(index, dtype=np.int64)]
            return value
        if tok in _CONSTANTS:
            return _CONSTANTS[tok]
        raise KernelSourceError(f"fake cupy kernel: unknown name {tok!r}")


def _call(name: str, args: list):
    if name in _FLOAT_FUNCS and len(args) == 1:
        x = args[0]
        if _dtype(x).kind != "f":
            x = _cast(x, np.float64)
        elif _dtype(x) == np.float16:
            x = _cast(x, np.float32)
        with np.errstate(all="ignore"):
            out = _FLOAT_FUNCS[name](x)
        single = name.endswith("f") and name[:-1] in _FLOAT_FUNCS  # expf, logf...: float in, float out
        return _cast(out, np.float32) if single else out
    if name in _BINARY_FUNCS and len(args) == 2:
        dtype = _common(*args)
        with np.errstate(all="ignore"):
            return _BINARY_FUNCS[name](_cast(args[0], dtype), _cast(args[1], dtype))
    raise KernelSourceError(f"fake cupy kernel: unsupported function {name}({len(args)} arguments)")


def _statements(source: str, env: dict, types: dict, declared: dict) -> None:
    """Run ``;``-separated declarations and assignments; ``declared`` holds each variable's C type."""
    for statement in source.split(";"):
        tokens = _tokens(statement)
        if not tokens:
            continue
        parser = _Parser(tokens, env, types)
        while parser.peek() == "const":
            parser.take()
        dtype, span = parser.type_at()
        if dtype is not None and parser.peek(span) not in (None, "=", "(", ")"):
            parser.p += span
            name = parser.take()
            declared[name] = dtype
            env[name] = np.zeros((), dtype)
        else:
            name = parser.take()
        op = parser.take()
        if op not in ("=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="):
            raise KernelSourceError(f"fake cupy kernel: cannot run the statement {statement.strip()!r}")
        value = parser.expression()
        if parser.peek() is not None:
            raise KernelSourceError(f"fake cupy kernel: unexpected {parser.peek()!r} in {statement.strip()!r}")
        if name not in env:
            raise KernelSourceError(f"fake cupy kernel: assignment to undeclared {name!r}")
        if op != "=":
            value = _binary(op[:-1], env[name], value)
        env[name] = _cast(value, declared.get(name, _dtype(env[name])))


def _params(spec: str) -> list[tuple[str, str, bool]]:
    """'T x, raw float32 y' -> [(type, name, raw)]."""
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        words = part.split()
        raw = words[0] == "raw"
        words = words[1:] if raw else words
        out.append((" ".join(words[:-1]), words[-1], raw))
    return out


class _Kernel:
    def __init__(self, in_params: str, out_params: str, name: str):
        self.in_params, self.out_params = _params(in_params), _params(out_params)
        self.name = name
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self.nargs = self.nin + self.nout

    def _bind(self, args):
        """Type variables from the arguments, and each input as a NumPy value of its declared type."""
        if len(args) not in (self.nin, self.nargs):
            raise TypeError(f"Wrong number of arguments for {self.name!r}: {len(args)} given, {self.nin} or "
                            f"{self.nargs} expected")
        for a in args:
            if isinstance(a, np.ndarray):
                raise TypeError(f"Unsupported type {type(a)}")
        types: dict = {}
        for (ctype, _, _), a in zip(self.in_params + self.out_params, args, strict=False):
            if ctype not in _TYPES and isinstance(a, ndarray):
                types.setdefault(ctype, a.dtype.type)
        for ctype, pname, _ in self.in_params + self.out_params:
            if ctype not in _TYPES and ctype not in types:
                raise TypeError(f"Cannot determine the type of {pname!r} ({ctype}) in {self.name!r}")
        resolve = {**_TYPES, **types}
        values = []
        for (ctype, _, _), a in zip(self.in_params, args, strict=False):
            values.append(_cast(unwrap(a), resolve[ctype]))
        return types, resolve, values


class ElementwiseKernel(_Kernel):
    """``cupy.ElementwiseKernel(in_params, out_params, operation, name)``, run by the translator."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", **kwargs):
        super().__init__(in_params, out_params, name)
        if preamble or loop_prep or after_loop:
            raise KernelSourceError("fake cupy ElementwiseKernel: preamble/loop_prep/after_loop are not supported")
        self.operation = operation
        self.no_return, self.return_tuple = no_return, return_tuple
        _statements_check(operation)

    def __call__(self, *args, size=None, block_size=None, stream=None):
        result = self._run(args, size)
        return record(lambda: self._run(args, size, replaying=True), result)

    def _run(self, args, size, replaying: bool = False):
        types, resolve, values = self._bind(args)
        shaped = [v for (_, _, raw), v in zip(self.in_params, values, strict=True) if not raw]
        outs_given = list(args[self.nin:])
        shapes = [np.shape(v) for v in shaped] + [o.shape for o in outs_given]
        shape = np.broadcast_shapes(*shapes) if shapes else (int(size),)
        n = int(np.prod(shape))
        env = {"i": np.arange(n, dtype=np.int64).reshape(shape), "_ind": n}
        for (_, pname, raw), v in zip(self.in_params, values, strict=True):
            env[pname] = v if raw else np.broadcast_to(v, shape)
        declared = {}
        outs = []
        for k, (ctype, pname, _) in enumerate(self.out_params):
            if outs_given:
                target = outs_given[k]._a
                env[pname] = np.broadcast_to(target, shape).astype(target.dtype)
            else:
                target = None
                env[pname] = np.zeros(shape, resolve[ctype])
            declared[pname] = resolve[ctype] if ctype in resolve else env[pname].dtype
            outs.append(target)
        _statements(self.operation, env, types, declared)
        results = []
        for k, (_, pname, _) in enumerate(self.out_params):
            value = np.broadcast_to(env[pname], shape)
            if outs[k] is not None:
                np.copyto(outs[k], value)
                results.append(outs_given[k] if not replaying else outs[k])
            else:
                results.append(np.array(value, dtype=declared[pname]))
        if replaying:
            return results[0] if len(results) == 1 and not self.return_tuple else tuple(results)
        wrapped = [r if isinstance(r, ndarray) else wrap(r) for r in results]
        if self.no_return:
            return None
        return wrapped[0] if len(wrapped) == 1 and not self.return_tuple else tuple(wrapped)


_REDUCE = {"a+b": np.add, "a*b": np.multiply, "max(a,b)": np.maximum, "min(a,b)": np.minimum,
           "(a>b||a!=a)?a:b": np.maximum, "(a<b||a!=a)?a:b": np.minimum,  # NaN-propagating, as NumPy
           "fmax(a,b)": np.fmax, "fmin(a,b)": np.fmin, "a>b?a:b": np.maximum, "a<b?a:b": np.minimum}


class ReductionKernel(_Kernel):
    """``cupy.ReductionKernel``: ``map_expr`` per element, folded by ``reduce_expr`` over ``axis``, then
    ``post_map_expr`` assigns the outputs from ``a`` (``_in_ind.size()``/``_out_ind.size()`` available)."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name="reduce_kernel",
                 reduce_type=None, reduce_dims=True, preamble="", options=(), **kwargs):
        super().__init__(in_params, out_params, name)
        if preamble:
            raise KernelSourceError("fake cupy ReductionKernel: preamble is not supported")
        key = re.sub(r"\s+", "", reduce_expr)
        if key not in _REDUCE:
            raise KernelSourceError(f"fake cupy ReductionKernel: unsupported reduce_expr {reduce_expr!r}")
        self.map_expr, self.fold, self.post_map_expr = map_expr, _REDUCE[key], post_map_expr
        self.identity, self.reduce_type = identity, reduce_type
        _tokens(map_expr)
        _statements_check(post_map_expr)

    def __call__(self, *args, out=None, axis=None, keepdims=False, stream=None):
        if out is not None:
            args = (*args, out)
        result = self._run(args, axis, keepdims)
        return record(lambda: self._run(args, axis, keepdims, replaying=True), result)

    def _run(self, args, axis, keepdims, replaying: bool = False):
        types, resolve, values = self._bind(args)
        shape = np.broadcast_shapes(*[np.shape(v) for v in values])
        env = {pname: np.broadcast_to(v, shape) for (_, pname, _), v in zip(self.in_params, values, strict=True)}
        env["i"] = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
        mapped = _Parser(_tokens(self.map_expr), env, types).expression()
        rtype = resolve.get(self.reduce_type, _TYPES.get(self.reduce_type or "", None)) if self.reduce_type \
            else _dtype(mapped).type
        mapped = np.broadcast_to(_cast(mapped, rtype), shape)
        axes = tuple(range(len(shape))) if axis is None else tuple(
            a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis))
        identity = None if self.identity in (None, "") else _Parser(_tokens(self.identity), {}, types).expression()
        if mapped.size == 0 and identity is None:
            raise ValueError(f"zero-size array to reduction operation {self.name} which has no identity")
        reduced = self.fold.reduce(mapped, axis=axes, keepdims=keepdims,
                                   **({"initial": _cast(identity, rtype)} if identity is not None else {}))
        n_in, n_out = int(np.prod(shape)), max(int(np.prod(np.shape(reduced))), 1)
        env2 = {"a": np.asarray(reduced), "_in_ind": n_in, "_out_ind": n_out}
        declared = {}
        outs_given = list(args[self.nin:])
        for ctype, pname, _ in self.out_params:
            dtype = resolve[ctype] if ctype in resolve else np.float64
            env2[pname] = np.zeros(np.shape(reduced), dtype)
            declared[pname] = dtype
        _statements(self.post_map_expr, env2, types, declared)
        results = []
        for k, (_, pname, _) in enumerate(self.out_params):
            value = np.asarray(env2[pname], dtype=declared[pname])
            if outs_given:
                np.copyto(outs_given[k]._a, value)
                results.append(outs_given[k]._a if replaying else outs_given[k])
            else:
                results.append(value)
        if replaying:
            return results[0] if len(results) == 1 else tuple(results)
        wrapped = [r if isinstance(r, ndarray) else wrap(r) for r in results]
        return wrapped[0] if len(wrapped) == 1 else tuple(wrapped)


def _statements_check(source: str) -> None:
    for statement in source.split(";"):
        _tokens(statement)
