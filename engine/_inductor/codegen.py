"""Source generation: one numba kernel per fused group, and the Python ``call`` that runs the program.

A kernel loops over the group's domain after coalescing: adjacent dims that every operand either
spans fully or broadcasts are merged, size-1 dims dropped, so a contiguous elementwise chain is one
flat loop and a bias add is a 2-d loop. Operands are passed reshaped to the coalesced rank; a
broadcast dim is indexed with 0. Each value is a local scalar cast to its dtype after every op (as
eager rounds every op's result). A row kernel (a group with reductions over trailing dims) loops
over the outer dims (``prange`` when large) and runs one pass over the row per reduction level:
softmax is 3 passes (max, sum of exp, normalize) over one row in cache.
"""

from __future__ import annotations

import math
import os

import numpy as np

from engine._inductor import pointwise
from engine._inductor.ir import Value
from engine._inductor.scheduler import Group

PARALLEL_MIN_ELEMENTS = 1 << 17  # below this, thread start-up costs more than it saves


def parallel_allowed() -> bool:
    """``prange`` kernels only with 4+ cores (``KILN_INDUCTOR_PARALLEL=1/0`` overrides).

    NOTE: measured on a loaded 2-core machine, a 1M-element fused kernel took 28 ms with numba's 2 OpenMP
    threads and 2 ms serially: a parallel region waits for its slowest thread, and a shared core is often
    taken. Memory-bound loops gain little from a second core anyway.
    """
    forced = os.environ.get("KILN_INDUCTOR_PARALLEL")
    if forced in ("0", "1"):
        return forced == "1"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores >= 4


def _np_type(dtype) -> str:
    dtype = np.dtype(dtype)
    return "bool" if dtype == np.bool_ else f"np.{dtype.name}"


def _cast(expr: str, dtype) -> str:
    dtype = np.dtype(dtype)
    return f"bool({expr})" if dtype == np.bool_ else f"np.{dtype.name}({expr})"


def literal(value, like=None) -> str:
    """A Python number as source; cast to ``like`` (a float dtype) as NumPy casts a weak scalar."""
    if isinstance(value, bool | np.bool_):
        return repr(bool(value))
    value = float(value) if isinstance(value, float | np.floating) else int(value)
    if isinstance(value, float):
        text = "math.inf" if value == math.inf else "-math.inf" if value == -math.inf else \
            "math.nan" if value != value else repr(value)
    else:
        text = repr(value)
    if like is not None and np.dtype(like).kind == "f":
        return f"np.{np.dtype(like).name}({text})"
    return text


def _first_float(v: Value):
    for a in v.args:
        if isinstance(a, Value) and a.dtype.kind == "f":
            return a.dtype
    return v.dtype if v.dtype.kind == "f" else None


class KernelSource:
    """The numba source of one group and how the wrapper calls it."""

    def __init__(self, g: Group, fresh: set, parallel_ok: bool = True):
        self.g = g
        S = g.shape
        n = len(S)
        self.pointwise_only = g.k is None
        k = n if g.k is None else g.k
        self.k = k
        members = set(g.members)
        self.role = {v: ("full" if self.pointwise_only else g.role(v)) for v in g.members}
        # operand uses: (value, aligned shape of rank n)
        uses: list = []
        self.use_of: dict = {}  # (member, arg position) -> use index
        for v in g.members:
            for pos, a in enumerate(v.args):
                if not isinstance(a, Value) or a in members:
                    continue
                if self.role[v] == "row" and v.kind != "reduce" and len(v.shape) == k and k < n:
                    aligned = (1,) * (k - len(a.shape)) + a.shape + (1,) * (n - k)
                else:
                    aligned = (1,) * (n - len(a.shape)) + a.shape
                key = (a, aligned)
                if key not in uses:
                    uses.append(key)
                self.use_of[(v, pos)] = uses.index(key)
        self.uses = uses
        self.outputs = list(g.outputs)
        # coalescing
        patterns = [u[1] for u in uses] + [S if self.role[o] == "full" else S[:k] + (1,) * (n - k)
                                           for o in self.outputs]
        keep = [d for d in range(n) if S[d] != 1]
        groups: list[list[int]] = []
        for d in keep:
            if groups and (groups[-1][-1] < k) == (d < k) and all(
                    (p[groups[-1][-1]] == 1) == (p[d] == 1) for p in patterns):
                groups[-1].append(d)
            else:
                groups.append([d])
        outer = [gr for gr in groups if gr[0] < k]
        inner = [gr for gr in groups if gr[0] >= k]
        self.dummy_outer = not outer
        self.extents = ([1] if not outer else [int(np.prod([S[d] for d in gr])) for gr in outer]) + \
                       [int(np.prod([S[d] for d in gr])) for gr in inner]
        self.n_outer = max(len(outer), 1)
        self.coalesced = ([[]] if not outer else outer) + inner

        def shape_of(pattern) -> tuple:
            return tuple(int(np.prod([pattern[d] for d in gr])) if gr else 1 for gr in self.coalesced)

        self.use_shapes = [shape_of(p) for _, p in uses]
        self.out_shapes = [shape_of(p) for p in patterns[len(uses):]]
        numel = int(np.prod(S, dtype=np.int64)) if S else 1
        self.parallel = parallel_ok and numel >= PARALLEL_MIN_ELEMENTS and self.extents[0] >= 2 and parallel_allowed()
        self.fresh = [o in fresh for o in self.outputs]
        self.source = self._emit()

    # ----- indices ------------------------------------------------------------------------------
    def _index(self, shape: tuple, row: bool) -> str:
        parts = []
        for j, size in enumerate(shape):
            if j < self.n_outer:
                parts.append(f"o{j}" if size > 1 else "0")
            else:
                parts.append("0" if row or size == 1 else f"i{j - self.n_outer}")
        return "[" + ", ".join(parts) + "]"

    def _assign(self, v: Value, names: dict) -> str:
        """The statement(s), on one line, computing member ``v`` into its local."""
        template = pointwise.OPS[v.op][0]
        like = _first_float(v)
        operands = []
        for pos, a in enumerate(v.args):
            if isinstance(a, Value):
                operands.append(names[a] if a in names else f"x{self.use_of[(v, pos)]}")
            elif a is None:
                operands.append("None")
            elif isinstance(a, np.dtype):
                operands.append(_np_type(a))
            else:
                operands.append(literal(a, like))
        if v.dtype == np.float32 and v.op in pointwise.FLOAT32_SCALAR:
            pre, expr = pointwise.FLOAT32_SCALAR[v.op](operands, f"_{names[v]}")
            return "; ".join([*pre, f"{names[v]} = {_cast(expr, v.dtype)}"])
        return f"{names[v]} = {_cast(template.format(*operands), v.dtype)}"

    def _fastmath(self) -> str:
        """Row kernels with a sum let LLVM reassociate, so the float64 accumulator runs in SIMD lanes.

        NOTE: without it each row sum is one serial add chain (~4 cycles an element): most of a layer norm's
        time. Every op's result is still rounded to its dtype (the casts stay), so only the float64
        accumulations and float64 sub-expressions may change order: at 1e-16 relative.
        """
        if self.pointwise_only or not any(v.kind == "reduce" and v.op == "sum" for v in self.g.members):
            return ""
        return ", fastmath={'reassoc'}"

    # ----- source -----------------------------------------------------------------------------------
    def _emit(self) -> str:
        g = self.g
        members = g.members
        ins = [f"in{i}" for i in range(len(self.uses))]
        outs = [f"out{i}" for i in range(len(self.outputs))]
        exts = [f"e{j}" for j in range(len(self.extents))]
        names = {v: f"t{i}" for i, v in enumerate(members)}
        out_name = {o: outs[i] for i, o in enumerate(self.outputs)}
        full = [v for v in members if self.role[v] == "full"]
        stage: dict = {}
        level: dict = {}
        for v in members:
            if self.role[v] == "full":
                stage[v] = max([stage[a] for a in v.args if a in stage] +
                               [level[a] for a in v.args if a in level] + [0])
            elif v.kind == "reduce":
                (u,) = v.args
                level[v] = (stage[u] if u in stage else 0) + 1
            else:
                level[v] = max([level[a] for a in v.args if a in level] + [0])
        roots: dict = {}
        for v in members:
            if v.kind == "reduce":
                (u,) = v.args
                roots.setdefault(stage.get(u, 0), []).append(v)
            elif self.role[v] == "full" and v in out_name:
                roots.setdefault(stage[v], []).append(v)
        n_stages = max(roots) + 1 if roots else 0
        lines = ["import math", "import numpy as np", "from numba import njit, prange", "",
                 "",
                 f"@njit(cache=True, parallel={self.parallel}, error_model='numpy', nogil=True{self._fastmath()})",
                 f"def kernel({', '.join(ins + outs + exts)}):"]
        ind = "    "
        outer_loop = "prange" if self.parallel else "range"
        for j in range(self.n_outer):
            rng = outer_loop if j == 0 else "range"
            lines.append(f"{ind}for o{j} in {rng}(e{j}):")
            ind += "    "
        full_set = set(full)

        def closure(roots_here) -> list:
            need: set = set()
            stack = [r for r in roots_here if r in full_set]
            for r in roots_here:
                if r.kind == "reduce" and r.args[0] in full_set:
                    stack.append(r.args[0])
            while stack:
                v = stack.pop()
                if v in need:
                    continue
                need.add(v)
                stack += [a for a in v.args if a in full_set]
            return [v for v in full if v in need]

        def emit_full(body_ind: str, needed: list, stores, reductions) -> None:
            loaded: set = set()
            for v in needed:
                for pos in range(len(v.args)):
                    if (v, pos) in self.use_of:
                        u = self.use_of[(v, pos)]
                        if u not in loaded:
                            loaded.add(u)
                            lines.append(f"{body_ind}x{u} = in{u}{self._index(self.use_shapes[u], False)}")
                lines.append(f"{body_ind}{self._assign(v, names)}")
            for v in stores:
                lines.append(f"{body_ind}{out_name[v]}{self._index(self.out_shapes[self.outputs.index(v)], False)}"
                             f" = {names[v]}")
            for r in reductions:
                (u,) = r.args
                if u in names:
                    val = names[u]
                else:
                    uidx = self.use_of[(r, 0)]
                    if uidx not in loaded:
                        loaded.add(uidx)
                        lines.append(f"{body_ind}x{uidx} = in{uidx}{self._index(self.use_shapes[uidx], False)}")
                    val = f"x{uidx}"
                acc = f"a{names[r]}"
                if r.op == "sum":
                    lines.append(f"{body_ind}{acc} += {val}")
                else:  # NOTE: a select and a separate NaN flag: branch-free, twice the speed of an if
                    cmp = ">" if r.op == "max" else "<"
                    lines.append(f"{body_ind}{acc} = {val} if {val} {cmp} {acc} else {acc}")
                    if r.dtype.kind == "f":
                        lines.append(f"{body_ind}n{acc} |= {val} != {val}")

        if self.pointwise_only:
            emit_full(ind, full, [v for v in full if v in out_name], [])
            return "\n".join(lines) + "\n"

        rows = [v for v in members if self.role[v] == "row"]
        emitted_rows: set = set()

        def emit_rows(upto_level: int) -> None:
            for v in rows:
                if v in emitted_rows or v.kind == "reduce" or level[v] > upto_level:
                    continue
                loaded: set = set()
                for pos in range(len(v.args)):
                    if (v, pos) in self.use_of:
                        u = self.use_of[(v, pos)]
                        if u not in loaded:
                            loaded.add(u)
                            lines.append(f"{ind}x{u} = in{u}{self._index(self.use_shapes[u], True)}")
                lines.append(f"{ind}{self._assign(v, names)}")
                emitted_rows.add(v)

        for s in range(n_stages):
            emit_rows(s)
            here = roots.get(s, [])
            reductions = [r for r in here if r.kind == "reduce"]
            for r in reductions:
                acc = f"a{names[r]}"
                if r.op == "sum":
                    lines.append(f"{ind}{acc} = {'0.0' if r.dtype.kind == 'f' else '0'}")
                else:
                    big = "math.inf" if r.dtype.kind == "f" else str(
                        np.iinfo(r.dtype).max if r.op == "min" else np.iinfo(r.dtype).min)
                    init = big if r.op == "min" or r.dtype.kind != "f" else "-math.inf"
                    lines.append(f"{ind}{acc} = {init}")
                    if r.dtype.kind == "f":
                        lines.append(f"{ind}n{acc} = False")
            body = ind
            for j in range(len(self.extents) - self.n_outer):
                lines.append(f"{body}for i{j} in range(e{self.n_outer + j}):")
                body += "    "
            emit_full(body, closure(here), [v for v in here if v.kind != "reduce"], reductions)
            for r in reductions:
                acc = f"a{names[r]}"
                if r.op != "sum" and r.dtype.kind == "f":  # NaN propagates, as in NumPy's max/min
                    acc = f"({acc} if not n{acc} else math.nan)"
                lines.append(f"{ind}{names[r]} = {_cast(acc, r.dtype)}")
        emit_rows(10 ** 9)
        for o in self.outputs:
            if self.role[o] == "row":
                lines.append(f"{ind}{out_name[o]}{self._index(self.out_shapes[self.outputs.index(o)], True)}"
                             f" = {names[o]}")
        return "\n".join(lines) + "\n"
