"""CUDA code generation: each fused group of the shared ``Schedule`` as CuPy kernels (the GPU's ``codegen``).

A pointwise group is one ``ElementwiseKernel``: every member a typed local of the CUDA C body, cast to its
dtype after each op (as eager rounds every op), operands passed reshaped to the group's rank so CuPy's
broadcasting of kernel arguments does the index arithmetic. A group with trailing-axis reductions (a row
kernel on CPU) runs as one ``ReductionKernel`` per reduction, its pointwise prologue inlined into
``map_expr`` (earlier reductions passed as keepdim arrays), then one ``ElementwiseKernel`` over the full
domain for the epilogue outputs and one over the rows for per-row outputs: softmax is two reductions and
one elementwise pass. Kernels are built once per source (``cache.load_cuda_kernel``); sources never name a
size, so a new batch size or the same group in another graph reuses them.

float16 groups compute in float and store in half, as inductor does: a half operand is read as ``(float)in0``,
every local is a ``float``, and a value is rounded to half only where it is stored (an output, a reduction's
result) or explicitly cast (``.half()``), so a fused chain is within half rounding of eager, not bitwise equal.
bfloat16 stays unfused: CuPy has no bfloat16 kernel type.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from engine._inductor import pointwise
from engine._inductor.cache import load_cuda_kernel
from engine._inductor.ir import Value
from engine._inductor.scheduler import Group

CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.int64): "long long",
          np.dtype(np.int32): "int", np.dtype(np.int8): "signed char", np.dtype(np.uint8): "unsigned char",
          np.dtype(np.bool_): "bool", np.dtype(np.float16): "float"}
# NOTE: the C type a dtype is stored as when CTYPES (what it computes in) differs: CuPy's float16 (a half)
STORAGE = {np.dtype(np.float16): "float16"}
_COMPARE = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})
_LOGICAL = frozenset({"logical_not", "logical_and", "logical_or"})
_REDUCE_EXPR = {"sum": "a + b", "max": "(a > b || a != a) ? a : b", "min": "(a < b || a != a) ? a : b"}


def supported_dtype(dtype) -> bool:
    return dtype is not None and np.dtype(dtype) in CTYPES


def fusable(v: Value) -> bool:
    """Whether the CUDA templates cover pointwise value ``v`` (dtypes, operands)."""
    if v.numel == 0 or not supported_dtype(v.dtype) or pointwise.OPS[v.op][2] is None:
        return False
    for a in v.args:
        if isinstance(a, Value):
            if not supported_dtype(a.dtype):
                return False
        elif not isinstance(a, bool | int | float | np.number | np.bool_):
            return False
    return v.op not in _COMPARE or _compare_dtype(v) in CTYPES


def _param_type(dtype) -> str:
    return np.dtype(dtype).name


def _compare_dtype(v: Value):
    arrays = [a.dtype for a in v.args if isinstance(a, Value)]
    floats = [d for d in arrays if d.kind == "f"]
    if floats:
        return np.dtype(np.float64) if np.dtype(np.float64) in floats else np.dtype(np.float32)
    if any(isinstance(a, float | np.floating) for a in v.args if not isinstance(a, Value)):
        return np.dtype(np.float64)
    return np.result_type(*arrays)


class _Source:
    """Operand naming for one kernel: which inputs, reductions and non-finite constants its source reads."""

    def __init__(self, uses: list, reductions: dict):
        self.uses, self.reductions = uses, reductions
        self.read_uses: set = set()
        self.read_reductions: set = set()
        self.constants: list = []

    def literal(self, value) -> str:
        if isinstance(value, bool | np.bool_):
            return "true" if value else "false"
        if isinstance(value, float | np.floating):
            value = float(value)
            if not math.isfinite(value):  # NOTE: no portable C literal for inf/nan: a kernel argument instead
                self.constants.append(value)
                return f"c{len(self.constants) - 1}"
            return f"({value!r})"
        value = int(value)
        return f"({value}LL)" if not -2**31 <= value < 2**31 else f"({value})"

    def use(self, index: int) -> str:
        self.read_uses.add(index)
        return _load(f"in{index}", self.uses[index][0].dtype)

    def reduction(self, r: Value) -> str:
        self.read_reductions.add(r)
        return _load(f"r{self.reductions[r]}", r.dtype)

    def in_params(self) -> list[str]:
        params = [f"{_param_type(self.uses[q][0].dtype)} in{q}" for q in sorted(self.read_uses)]
        params += [f"{_param_type(r.dtype)} r{j}" for r, j in self.reductions.items() if r in self.read_reductions]
        return params + [f"float64 c{j}" for j in range(len(self.constants))]


def _load(name: str, dtype) -> str:
    """A kernel argument as its compute type: a half widened to float once, where it is read."""
    return f"(({CTYPES[dtype]}){name})" if dtype in STORAGE else name


def _store(text: str, dtype) -> str:
    """A computed value as its storage type (rounded to half for a float16 output)."""
    storage = STORAGE.get(dtype)
    return text if storage is None else f"(({storage})({text}))"


def op_expr(v: Value, operand) -> str:
    """The CUDA C expression of pointwise ``v``; ``operand(pos, arg)`` gives each operand's text."""
    R = CTYPES[v.dtype]
    template = pointwise.OPS[v.op][2]
    if isinstance(template, tuple):
        template = template[0] if v.dtype.kind == "f" else template[1]
    texts = []
    for pos, a in enumerate(v.args):
        text = operand(pos, a)
        if v.op in _COMPARE:
            ctype: str | None = CTYPES[_compare_dtype(v)]
        elif v.op in _LOGICAL or (v.op == "where" and pos == 0):
            ctype = "bool"
        elif v.op == "cast" or (v.op == "keep" and pos == 0):
            ctype = None
        elif v.op == "keep" and pos == 1:
            ctype = CTYPES[v.args[0].dtype]
        else:
            ctype = R
        same = isinstance(a, Value) and CTYPES[a.dtype] == ctype
        texts.append(text if ctype is None or same else f"(({ctype}){text})")
    assert isinstance(template, str)
    if v.op == "cast" and v.dtype in STORAGE:  # an explicit cast to half rounds, as eager's does
        return f"(({R}){_store(f'(({R})({template.format(*texts, R=R)}))', v.dtype)})"
    return f"(({R})({template.format(*texts, R=R)}))"


class GroupKernels:
    """The CuPy kernels of one fused group and how to call them: ``self(*inputs, *outputs)``.

    ``uses`` lists the group's operands (value, shape aligned to the group's rank) in call order; ``outputs``
    the members it materializes (in their planned buffers).
    """

    def __init__(self, g: Group, xp):
        self.xp = xp
        S = g.shape
        n = len(S)
        k = n if g.k is None else g.k
        self.keeprow = S[:k] + (1,) * (n - k)
        self.axes = tuple(range(k, n))
        members = g.members
        member_set = set(members)
        self.role = {v: ("full" if g.k is None else g.role(v)) for v in members}
        uses: list = []
        self.use_of: dict = {}
        for v in members:
            for pos, a in enumerate(v.args):
                if not isinstance(a, Value) or a in member_set:
                    continue
                if self.role[v] == "row" and v.kind != "reduce" and len(v.shape) == k and k < n:
                    aligned = (1,) * (k - len(a.shape)) + a.shape + (1,) * (n - k)
                else:
                    aligned = (1,) * (n - len(a.shape)) + a.shape
                if (a, aligned) not in uses:
                    uses.append((a, aligned))
                self.use_of[(v, pos)] = uses.index((a, aligned))
        self.uses = uses
        self.outputs = list(g.outputs)
        self.reductions = {r: j for j, r in enumerate(v for v in members if v.kind == "reduce")}
        self.sources: list[str] = []
        self.launches: list = []
        self.temps: dict = {}  # reduction -> private keepdim buffer (not read outside the group)
        for r in self.reductions:
            self._reduction_launch(r)
            if r not in self.outputs:
                self.temps[r] = xp.empty(self.keeprow, r.dtype)
        full = [o for o in self.outputs if self.role[o] == "full"]
        rows = [o for o in self.outputs if self.role[o] == "row" and o.kind != "reduce"]
        for outs, shape in ((full, S), (rows, self.keeprow)):
            if outs:
                self._elementwise_launch(outs, shape)

    # ----- source ----------------------------------------------------------------------------------------
    def _operand(self, src: _Source, v: Value, pos: int, a, inline: bool, locals_: dict) -> str:
        if not isinstance(a, Value):
            return src.literal(a)
        if (v, pos) in self.use_of:
            return src.use(self.use_of[(v, pos)])
        if a.kind == "reduce":
            return src.reduction(a)
        if not inline:
            return locals_[a]
        return op_expr(a, lambda p, b: self._operand(src, a, p, b, True, locals_))

    def _name(self, kind: str, parts: tuple) -> str:
        return f"kiln_{kind}_" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def _reduction_launch(self, r: Value) -> None:
        src = _Source(self.uses, {q: j for q, j in self.reductions.items() if self.reductions[q] < self.reductions[r]})
        (u,) = r.args
        ctype = CTYPES.get(r.dtype)
        if ctype is None:
            raise TypeError(f"no CUDA type for {r.dtype}")
        mapped = f"(({ctype}){self._operand(src, r, 0, u, True, {})})"
        if r.op == "sum":
            identity = "0"
        elif r.dtype.kind == "f":
            identity = "(1.0 / 0.0)" if r.op == "min" else "-(1.0 / 0.0)"
        elif r.dtype.kind == "b":
            identity = "true" if r.op == "min" else "false"
        else:
            info = np.iinfo(r.dtype)
            identity = f"({info.max}LL)" if r.op == "min" else f"({info.min + 1}LL - 1)"
        in_params = ", ".join(src.in_params())
        out_params = f"{_param_type(r.dtype)} y"
        post_map = f"y = {_store('a', r.dtype)}"
        parts = (in_params, out_params, mapped, _REDUCE_EXPR[r.op], post_map, identity, ctype)
        name = self._name("reduce", parts)
        kernel = load_cuda_kernel(self.xp, "ReductionKernel", in_params, out_params, mapped, _REDUCE_EXPR[r.op],
                                  post_map, identity, name, reduce_type=ctype)
        self.sources.append(f"ReductionKernel({', '.join(map(repr, parts[:6]))}, {name!r}, reduce_type={ctype!r})")
        self.launches.append(("reduce", kernel, self._args(src), r))

    def _elementwise_launch(self, outs: list, shape: tuple) -> None:
        src = _Source(self.uses, self.reductions)
        need: set = set()
        stack = list(outs)
        while stack:
            v = stack.pop()
            if v in need or v.kind == "reduce":
                continue
            need.add(v)
            stack += [a for a in v.args if isinstance(a, Value) and a in self.role]
        locals_: dict = {}
        body = []
        for v in (m for m in self.role if m in need):
            text = op_expr(v, lambda p, b, v=v: self._operand(src, v, p, b, False, locals_))
            locals_[v] = f"t{len(locals_)}"
            body.append(f"{CTYPES[v.dtype]} {locals_[v]} = {text}")
        body += [f"out{i} = {_store(locals_[o], o.dtype)}" for i, o in enumerate(outs)]
        in_params = ", ".join(src.in_params())
        out_params = ", ".join(f"{_param_type(o.dtype)} out{i}" for i, o in enumerate(outs))
        operation = "; ".join(body)
        name = self._name("fused", (in_params, out_params, operation))
        kernel = load_cuda_kernel(self.xp, "ElementwiseKernel", in_params, out_params, operation, name)
        self.sources.append(f"ElementwiseKernel({in_params!r}, {out_params!r}, {operation!r}, {name!r})")
        self.launches.append(("map", kernel, self._args(src), (outs, shape)))

    def _args(self, src: _Source) -> list:
        refs: list = [("use", q) for q in sorted(src.read_uses)]
        refs += [("red", r) for r in self.reductions if r in src.read_reductions]
        return refs + [("const", np.float64(c)) for c in src.constants]

    # ----- the call ----------------------------------------------------------------------------------------
    def __call__(self, *arrays):
        n_uses = len(self.uses)
        uses = [a if a.shape == aligned else a.reshape(aligned)
                for a, (_, aligned) in zip(arrays[:n_uses], self.uses, strict=True)]
        out_of = dict(zip(self.outputs, arrays[n_uses:], strict=True))
        keeprow = self.keeprow
        reduced: dict = {}
        for r, temp in self.temps.items():
            reduced[r] = temp
        for r in self.reductions:
            if r in out_of:
                buf = out_of[r]
                reduced[r] = buf if buf.shape == keeprow else buf.reshape(keeprow)
        for kind, kernel, refs, what in self.launches:
            args = [uses[x] if tag == "use" else reduced[x] if tag == "red" else x for tag, x in refs]
            if kind == "reduce":
                kernel(*args, out=reduced[what], axis=self.axes, keepdims=True)
            else:
                outs, shape = what
                kernel(*args, *(out_of[o] if out_of[o].shape == shape else out_of[o].reshape(shape) for o in outs))
