"""``mode="reduce-overhead"`` on CUDA: a compiled program replayed from one CUDA graph (PyTorch's cudagraphs).

The graph holds the program's longest run of steps that have no effect on the host (``pure_segment``): a
forward, a forward+backward, or the whole program when nothing in it touches the host. Steps outside the run
(``zero_grad``, the ``.grad`` delivery, an optimizer step reading its host-side step counter, random draws from
a host counter, in-place fallbacks) stay Python code around one graph launch. The first call runs the program
as is (a warm-up: kernels built and cuBLAS initialized outside any capture); the second copies the arrays the
run reads from outside (inputs, results of the steps before it) into static buffers and records the run into
an ``engine.cuda.CUDAGraph``; every later call copies into the static buffers and launches the graph: one launch
instead of one per kernel, no Python per op. Values the run makes live in the graph's memory: outputs are
overwritten by the next call of the same program (clone one to keep it), as with PyTorch's cudagraph trees;
they are returned as views, so autograd copies a gradient instead of keeping graph memory as a ``.grad``.

A capture that fails (a host sync inside the run, e.g. an eager kernel checking indices on the host) is
abandoned: the run executes plainly in that call and the program replays without a graph from then on, with
the reason logged. A parameter whose array was replaced (``load_state_dict`` onto new storage) is re-recorded.
"""

from __future__ import annotations

import logging

from engine._inductor.ir import Value

log = logging.getLogger("engine._inductor.cudagraphs")


_LAUNCHES = frozenset({"kernel", "extern", "reduce", "pointwise", "fallback"})


def _object_read(v) -> bool:
    return isinstance(v, Value) and (not v.is_array and v.kind in ("fallback", "object", "item"))


def pure_segment(compiled) -> tuple[int, int] | None:
    """The run of steps to capture: the longest (by device launches) with no effect on the host and no
    Python object from outside it (a fallback's ctx made before it), as (start, stop); None if there is none."""
    steps = compiled.schedule.steps
    best: tuple[int, int] | None = None
    start: int | None = None
    produced: set = set()

    def weight(span) -> int:
        return sum(s.kind in _LAUNCHES for s in steps[span[0]:span[1]])

    for i in range(len(steps) + 1):
        step = steps[i] if i < len(steps) else None
        ok = step is not None and not (step.value is not None and step.value.attrs.get("impure")) and all(
            a in produced for a in step.reads if _object_read(a))
        if ok and start is None and any(_object_read(a) for a in step.reads):
            ok = False
        if ok:
            if start is None:
                start, produced = i, set()
            produced.update(step.writes)
            continue
        if start is not None and (best is None or weight((start, i)) > weight(best)):
            best = (start, i)
        start = None
    return best if best is not None and weight(best) else None


class CUDAGraphRunner:
    """``compiled.call`` with its capturable steps replayed from a CUDA graph (see the module docstring);
    ``stats()`` counts captures and replays and says why there is no graph when there is none."""

    def __init__(self, compiled):
        self.compiled = compiled
        self.plain = compiled.call
        self.span = pure_segment(compiled)
        self.reason: str | None = None
        if self.span is None:
            self.reason = "every step has effects on the host (random numbers, optimizer state, .grad) that a " \
                          "graph replay would not repeat"
            log.info("reduce-overhead: no CUDA graph, plain replay: %s", self.reason)
        self.warm = False
        self.graph = None
        self.saved: dict = {}
        self.rebind: list = []
        self.statics: list = []
        self.tensors: dict = {}
        self.param_arrays: list = []
        self.captures = 0
        self.replays = 0
        if self.span is not None:
            wrap = compiled.ns["_wrap"]
            # NOTE: outputs are views of graph memory: autograd copies a gradient it is handed rather than keeping
            # the graph's array as a .grad that the next replay would overwrite
            compiled.ns["_wrap"] = lambda array: wrap(array.view())
            self.source = self._generate(*self.span)
            scope = compiled.ns
            scope["_seg"] = self
            exec(compile(self.source, "<engine._inductor cudagraph call>", "exec"), scope)  # noqa: S102
            self.graphed = scope.pop("call")
            compiled.ns["call"] = self.plain

    def stats(self) -> dict:
        steps = None if self.span is None else {"captured": self.span[1] - self.span[0],
                                                "of": len(self.compiled.schedule.steps)}
        return {"captures": self.captures, "replays": self.replays, "reason": self.reason, "steps": steps}

    def __call__(self, *args):
        if self.reason is not None or not self.warm:
            self.warm = True  # the warm-up: kernels built and cuBLAS initialized outside any capture
            return self.plain(*args)
        return self.graphed(*args)

    # ----- the generated call -------------------------------------------------------------------------------
    def _generate(self, a: int, b: int) -> str:
        c = self.compiled
        steps = c.schedule.steps
        produced: set = set()
        reads: list = []
        fallback_inputs: list = []
        params: list = []
        for step in steps[a:b]:
            for v in step.reads:
                if v in produced or v in reads or not isinstance(v, Value) or not v.is_array:
                    continue
                if v.kind == "param" and "tensor" in v.attrs:
                    if not any(t is v.attrs["tensor"] for t in params):  # NOTE: identity: == on tensors is elementwise
                        params.append(v.attrs["tensor"])
                elif v not in c.plan.slot_of and v.name not in c.ns:
                    reads.append(v)
                if step.kind == "fallback" and v.kind == "input" and v not in fallback_inputs:
                    fallback_inputs.append(v)
            produced.update(step.writes)
        self.params = params
        later: set = set(c.schedule.output_values)
        for step in steps[b:]:
            later.update(step.reads)
        rebind = [v for v in produced if v in later and v.name not in c.ns]
        self.rebind = [v.name for v in rebind]
        segment = [line for code in c.step_code[a:b] for line in code]
        names = ", ".join(v.name for v in reads) + ("," if len(reads) == 1 else "")
        bind_tensors = [f"_o_t_{v.name} = t_{v.name}; t_{v.name} = _seg.tensor(t_{v.name}, {v.name})"
                        for v in fallback_inputs]
        body = list(c.head)
        for code in c.step_code[:a]:
            body += code
        body.append("if _seg.ready():")
        if reads:
            body.append(f"    {names} = _seg.copy_in(({names}))")
        body += ["    " + line for line in bind_tensors]
        body.append("    _seg.launch()")
        body += [f"    {v.name} = _seg.saved[{v.name!r}]" for v in rebind]
        body.append("else:")
        if reads:
            body.append(f"    {names} = _seg.begin(({names}))")
        else:
            body.append("    _seg.begin(())")
        body += ["    " + line for line in bind_tensors]
        body.append("    try:")
        body += ["        " + line for line in segment] or ["        pass"]
        body.append("    except Exception as _exc:")
        body.append("        _seg.abandon(_exc)")
        body += ["        " + line for line in segment] or ["        pass"]
        body.append("    else:")
        body.append("        _seg.end(locals())")
        body += [f"t_{v.name} = _o_t_{v.name}" for v in fallback_inputs]
        for code in c.step_code[b:]:
            body += code
        body.append(c.tail)
        return "def call(*args):\n" + "".join(f"    {line}\n" for line in body)

    # ----- what the generated call asks ---------------------------------------------------------------------
    def ready(self) -> bool:
        return self.graph is not None and all(t._data is array for t, array in self.param_arrays)

    def copy_in(self, arrays) -> tuple:
        for static, array in zip(self.statics, arrays, strict=True):
            if static is not array:
                static[...] = array
        return tuple(self.statics)

    def tensor(self, t, static):
        """A tensor over ``static`` for the eager kernels of the captured steps (made once per static buffer)."""
        from engine.tensor import _make

        found = self.tensors.get(id(static))
        if found is None:
            found = self.tensors[id(static)] = _make(static, t._dtype, t._device)
        return found

    def begin(self, arrays) -> tuple:
        import engine.cuda

        self.statics = [array.copy() for array in arrays]
        self.tensors = {}
        self.graph = engine.cuda.CUDAGraph()
        self._context = engine.cuda.graph(self.graph)
        self._context.__enter__()
        return tuple(self.statics)

    def end(self, scope: dict) -> None:
        self._context.__exit__(None, None, None)
        self.saved = {name: scope[name] for name in self.rebind}  # what later steps read, kept alive with the graph
        self.param_arrays = [(t, t._data) for t in self.params]
        self.captures += 1
        self.launch()

    def abandon(self, exc: BaseException) -> None:
        try:
            self._context.__exit__(type(exc), exc, None)
        except Exception:  # noqa: S110 - the capture is broken already; its error is the one reported
            pass
        self.graph = None
        self.reason = f"capture failed: {exc}"
        log.info("reduce-overhead: no CUDA graph, plain replay: %s", self.reason)

    def launch(self) -> None:
        self.graph.replay()
        self.replays += 1
