"""Fusion and buffer planning over a lowered ``Program``.

Fusion (greedy, in program order): a pointwise value joins an open group of one of its producers
when it has the group's full shape S (or, once the group reduces, its per-row shape); a reduction
over the trailing axes of a full member joins that group, which becomes a row kernel (outer dims
parallel, inner dims reduced; values computed after a reduction run in a later pass over the row).
A group is sealed, and its kernel emitted, as soon as anything outside it reads one of its values,
and before any impure step (random draws, in-place fallbacks), so fusion never moves a read past a
write. Reductions over other axes, views, GEMMs and fallbacks are steps of their own.

Buffers: every materialized intermediate gets a buffer from a pool keyed by (dtype, element count);
a buffer returns to the pool after the last step that reads it (or reads a view of it), so
non-overlapping lifetimes share memory. Buffers are allocated once per compiled program and reused
by every replay. A value returned to the caller (or any buffer it views) is allocated fresh per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine._inductor.ir import Program, Value
from engine._inductor.pointwise import UFUNC_STEPS


@dataclass(eq=False)
class Group:
    shape: tuple  # the full domain S
    k: int | None = None  # reductions are over dims k.. of S (None: pointwise only)
    members: list = field(default_factory=list)
    sealed: bool = False
    outputs: list = field(default_factory=list)  # members read outside the group (materialized)
    inputs: list = field(default_factory=list)  # values read from outside the group

    def keeprow(self) -> tuple:
        k = len(self.shape) if self.k is None else self.k
        return self.shape[:k] + (1,) * (len(self.shape) - k)

    def role(self, v: Value) -> str | None:
        if v.kind == "reduce":
            return "row"
        if v.shape == self.shape:
            return "full"
        if self.k is not None and v.shape in (self.keeprow(), self.shape[:self.k]):
            return "row"
        return None


@dataclass(eq=False)
class Step:
    kind: str  # kernel | pointwise | reduce | view | extern | fallback | item
    value: Value | None = None
    group: Group | None = None
    reads: list = field(default_factory=list)
    writes: list = field(default_factory=list)


class Schedule:
    def __init__(self, prog: Program, fuse: bool, fusable=None):
        self.prog = prog
        self.fuse = fuse
        self.fusable = fusable or _numba_fusable  # which pointwise values the device's codegen takes
        self.steps: list[Step] = []
        self.group_of: dict = {}
        self.open: list[Group] = []
        outputs: list = []
        _collect(prog.output, outputs)
        self.output_values = outputs
        self._build()

    # ----- grouping ---------------------------------------------------------------------------
    def _seal(self, g: Group) -> None:
        if g.sealed:
            return
        g.sealed = True
        self.open.remove(g)
        members = set(g.members)
        outs = set(self.output_values)
        seen_inputs: list = []
        for v in g.members:
            for a in self.prog.inputs_of(v):
                if a not in members and a not in seen_inputs:
                    seen_inputs.append(a)
        g.inputs = seen_inputs
        g.outputs = [v for v in g.members if v in outs or any(u not in members for u in v.users)]
        self.steps.append(Step("kernel", group=g, reads=list(g.inputs), writes=list(g.outputs)))

    def _seal_producers(self, v: Value) -> None:
        for a in self.prog.inputs_of(v):
            g = self.group_of.get(a)
            if g is not None and not g.sealed:
                self._seal(g)

    def _join(self, v: Value) -> bool:
        inputs = self.prog.inputs_of(v)
        candidates = []
        for a in inputs:
            g = self.group_of.get(a)
            if g is not None and not g.sealed and g not in candidates:
                candidates.append(g)
        chosen = None
        for g in candidates:
            if self._fits(g, v) and (chosen is None or self._mergeable(chosen, g)):
                if chosen is None:
                    chosen = g
                else:
                    self._merge(chosen, g)
        for g in candidates:
            if g is not chosen and not g.sealed and g in self.open:
                self._seal(g)
        if chosen is None:
            return False
        chosen.members.append(v)
        self.group_of[v] = chosen
        return True

    def _fits(self, g: Group, v: Value) -> bool:
        role = g.role(v)
        if role is None:
            return False
        for a in self.prog.inputs_of(v):
            if self.group_of.get(a) is not g:
                continue
            ra = g.role(a)
            if role == "full" and not (ra == "full" or (ra == "row" and a.shape == g.keeprow())):
                return False
            if role == "row" and (ra != "row" or a.shape != v.shape):
                return False
        return True

    def _mergeable(self, a: Group, b: Group) -> bool:
        return a.shape == b.shape and (a.k is None or b.k is None or a.k == b.k)

    def _merge(self, into: Group, other: Group) -> None:
        order = {id(v): i for i, v in enumerate(self.prog.values)}
        into.members = sorted(into.members + other.members, key=lambda v: order[id(v)])
        into.k = into.k if into.k is not None else other.k
        for v in other.members:
            self.group_of[v] = into
        self.open.remove(other)

    def _join_reduce(self, r: Value) -> bool:
        (u,) = r.args
        n = len(u.shape)
        axes = r.attrs["axes"]
        k = n - len(axes)
        if tuple(axes) != tuple(range(k, n)) or u.numel == 0 or u.dtype.kind not in "fiub":
            return False
        g = self.group_of.get(u)
        if g is not None and not g.sealed and g.role(u) == "full" and g.k in (None, k):
            g.k = k
            g.members.append(r)
            self.group_of[r] = g
            return True
        if g is not None and not g.sealed:
            self._seal(g)
        g = Group(u.shape, k, [r])
        self.open.append(g)
        self.group_of[r] = g
        return True

    def _build(self) -> None:
        for v in self.prog.values:
            if v.kind in ("input", "param"):
                continue
            if self.fuse and v.kind == "pointwise" and self.fusable(v):
                if not self._join(v):
                    g = Group(v.shape, None, [v])
                    self.open.append(g)
                    self.group_of[v] = g
                continue
            if self.fuse and v.kind == "reduce" and self._join_reduce(v):
                continue
            self._seal_producers(v)
            if v.attrs.get("impure"):
                for g in list(self.open):
                    self._seal(g)
            kind = v.kind if v.kind != "object" else ("item" if "call_args" not in v.attrs else "fallback")
            self.steps.append(Step(kind, v, reads=self.prog.inputs_of(v), writes=[v]))
        for g in list(self.open):
            self._seal(g)


def _numba_fusable(v: Value) -> bool:
    return v.numel > 0 and v.op not in UFUNC_STEPS


def _collect(out, found: list) -> None:
    if isinstance(out, Value):
        found.append(out)
    elif isinstance(out, tuple | list):
        for o in out:
            _collect(o, found)
    elif isinstance(out, dict):
        for o in out.values():
            _collect(o, found)


# ----- buffers -------------------------------------------------------------------------------------
def needs_buffer(v: Value) -> bool:
    return v.kind in ("pointwise", "reduce") or (v.kind == "extern" and bool(v.attrs.get("out")))


class BufferPlan:
    """Assigns each materialized value a pooled buffer (or marks it fresh-per-call)."""

    def __init__(self, schedule: Schedule):
        self.slot_of: dict = {}  # value -> slot index
        self.slots: list = []  # (dtype, numel)
        self.fresh: set = set()
        bases: dict = {}
        for step in schedule.steps:
            for v in step.writes:
                if needs_buffer(v):
                    bases[v] = {v}
                elif v.kind in ("view", "fallback", "item", "object"):
                    found: set = set()
                    for a in schedule.prog.inputs_of(v):
                        found |= bases.get(a, set())
                    bases[v] = found
        for out in schedule.output_values:
            self.fresh |= bases.get(out, set())
        last_use: dict = {}  # a buffer read through a view (or a fallback's result) lives until its last reader
        for i, step in enumerate(schedule.steps):
            for a in step.reads:
                for b in bases.get(a, ()):
                    last_use[b] = i
        free: dict = {}
        release: dict = {}
        for i, step in enumerate(schedule.steps):
            for v in step.writes:
                if not needs_buffer(v) or v in self.fresh or v in self.slot_of:
                    continue
                key = (v.dtype.str, v.numel)
                pool = free.get(key)
                if pool:
                    slot = pool.pop()
                else:
                    slot = len(self.slots)
                    self.slots.append((v.dtype, v.numel))
                self.slot_of[v] = slot
                release.setdefault(max(last_use.get(v, i), i), []).append(v)
            for v in release.pop(i, ()):
                free.setdefault((v.dtype.str, v.numel), []).append(self.slot_of[v])

    def allocate(self, xp=np) -> list:
        return [xp.empty(max(numel, 1), dtype) for dtype, numel in self.slots]

    @property
    def nbytes(self) -> int:
        return int(sum(np.dtype(d).itemsize * max(n, 1) for d, n in self.slots))
