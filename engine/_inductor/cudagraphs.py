"""``mode="reduce-overhead"`` on CUDA: a compiled program replayed from one CUDA graph (PyTorch's cudagraphs).

The graph holds the program's longest run of steps that have no effect on the host (``pure_segment``): a
forward, a forward+backward, or a whole training step. Two host effects may sit inside the run because their
host side is repeated around the launch: the ``.grad`` delivery (the graph computes the gradients into its own
memory; after each launch the leaves' ``.grad`` are set to tensors over it, and a ``.grad`` already there is
copied into a static buffer first) and a fused optimizer step (SGD, or Adam/AdamW made ``capturable`` so the
step count and bias corrections live on the device: ``optim.FusedStep.make_capturable``; after each launch the
parameters' version counters move as the eager step moves them). A recorded graph is replayed only while what
it baked in holds (``_key``: which leaves had a ``.grad``, the optimizer's hyperparameters and state arrays); a
change records a new graph, and a call that cannot be replayed at all (step hooks, a tensor learning rate, a
gradient from outside the step) runs plainly. Other steps outside the run (``zero_grad``, random draws from a
host counter, in-place fallbacks) stay Python code around one graph launch. The first call runs the program as
is (a warm-up: kernels built and cuBLAS initialized outside any capture); the second copies the arrays the
run reads from outside (inputs, results of the steps before it) into static buffers and records the run into
an ``engine.cuda.CUDAGraph``; every later call copies into the static buffers and launches the graph: one launch
instead of one per kernel, no Python per op. Values the run makes live in the graph's memory: outputs (and the
delivered ``.grad``) are overwritten by the next call of the same program (clone one to keep it), as with
PyTorch's cudagraph trees; they are returned as views, so autograd copies a gradient instead of keeping graph
memory as a ``.grad``.

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


def _graphable(step) -> bool:
    """A host effect whose host side the runner repeats around a launch (see the module docstring)."""
    v = step.value
    if v is None or step.kind != "effect":
        return False
    if v.op == "deliver_grads":
        return True
    runner = v.attrs.get("runner")
    return v.op == "optimizer_step" and getattr(runner, "xp", None) is not None


def pure_segment(compiled) -> tuple[int, int] | None:
    """The run of steps to capture: the longest (by device launches) with no effect on the host and no
    Python object from outside it (a fallback's ctx made before it), as (start, stop); None if there is none."""
    steps = compiled.schedule.steps
    best: tuple[int, int] | None = None
    start: int | None = None
    produced: set = set()

    def weight(span) -> int:
        return sum(s.kind in _LAUNCHES or _graphable(s) for s in steps[span[0]:span[1]])

    for i in range(len(steps) + 1):
        step = steps[i] if i < len(steps) else None
        ok = step is not None and (not (step.value is not None and step.value.attrs.get("impure"))
                                   or _graphable(step)) and all(a in produced for a in step.reads if _object_read(a))
        if ok and step is not None and start is None and any(_object_read(a) for a in step.reads):
            ok = False
        if ok and step is not None:
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
        self.leaves: list = []  # (leaf Value, gradient dtype) of the .grad deliveries inside the run
        self.optimizers: list = []  # the optim.FusedStep runners inside the run
        self.key = None
        self.grad_statics: list = []
        self.delivered: list = []
        self.stepped: list = []
        self.held: list = []
        self.plain_reasons: set = set()
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
        """Captures, replays, why there is no graph; ``steps`` and ``launches`` (the steps that run device work)
        captured of all."""
        all_steps = self.compiled.schedule.steps
        steps = launches = None
        if self.span is not None:
            a, b = self.span
            steps = {"captured": b - a, "of": len(all_steps)}
            device = [i for i, s in enumerate(all_steps) if s.kind in _LAUNCHES or _graphable(s)]
            launches = {"captured": sum(a <= i < b for i in device), "of": len(device)}
        return {"captures": self.captures, "replays": self.replays, "reason": self.reason, "steps": steps,
                "launches": launches, "plain_calls": sorted(self.plain_reasons)}

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
            if step.kind == "effect" and step.value.op == "deliver_grads":
                args = step.value.args
                self.leaves += [(leaf, g.dtype) for leaf, g in zip(args[::2], args[1::2], strict=True)]
            elif step.kind == "effect" and step.value.op == "optimizer_step":
                self.optimizers.append(step.value.attrs["runner"])
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
        for opt in self.optimizers:
            opt.make_capturable()
        leaves = "(" + "".join(f"{c._tensor_arg(leaf)}, " for leaf, _ in self.leaves) + ")"
        restore = [f"    t_{v.name} = _o_t_{v.name}" for v in fallback_inputs]
        body = list(c.head)
        for code in c.step_code[:a]:
            body += code
        body.append(f"_leaves = {leaves}")
        body.append("_mode = _seg.mode(_leaves)")
        body.append("if _mode == 1:")
        if reads:
            body.append(f"    {names} = _seg.copy_in(({names}))")
        body.append("    _seg.grads_in(_leaves)")
        body += ["    " + line for line in bind_tensors]
        body.append("    _seg.launch()")
        body += [f"    {v.name} = _seg.saved[{v.name!r}]" for v in rebind]
        body.append("    _seg.after(_leaves)")
        body += restore
        body.append("elif _mode == 2:")
        if reads:
            body.append(f"    {names} = _seg.begin(({names}), _leaves)")
        else:
            body.append("    _seg.begin((), _leaves)")
        body += ["    " + line for line in bind_tensors]
        body.append("    try:")
        body += ["        " + line for line in segment] or ["        pass"]
        body.append("    except Exception as _exc:")
        body.append("        _seg.abandon(_exc, _leaves)")
        body += ["        " + line for line in segment] or ["        pass"]
        body.append("    else:")
        body.append("        _seg.end(locals(), _leaves)")
        body += restore
        body.append("else:")
        body += ["    " + line for line in segment] or ["    pass"]
        for code in c.step_code[b:]:
            body += code
        body.append(c.tail)
        return "def call(*args):\n" + "".join(f"    {line}\n" for line in body)

    # ----- what the generated call asks ---------------------------------------------------------------------
    def _key(self, leaves):
        """What the recorded graph baked in, for this call; a str when this call cannot use a graph."""
        grads = tuple(None if leaf.grad is None else (leaf.grad._data.shape, leaf.grad._data.dtype)
                      for leaf in leaves)
        delivered = {id(leaf): leaf._data.dtype for leaf in leaves}  # NOTE: the delivery casts to the leaf's dtype
        steps = []
        for opt in self.optimizers:
            key = opt.graph_key(delivered)
            if isinstance(key, str):
                return key
            steps.append(key)
        return grads, tuple(steps)

    def mode(self, leaves) -> int:
        """1: launch the recorded graph; 2: record one (none yet, or what it baked in changed); 0: run plainly."""
        key = self._key(leaves)
        if isinstance(key, str):
            if key not in self.plain_reasons:
                self.plain_reasons.add(key)
                log.info("reduce-overhead: a call without the CUDA graph: %s", key)
            return 0
        if self.graph is not None and key == self.key and all(t._data is array for t, array in self.param_arrays):
            return 1
        self.key = key
        self.held = [a for opt in self.optimizers for a in opt.key_arrays]  # NOTE: the key holds their ids
        return 2

    def grads_in(self, leaves) -> None:
        """A ``.grad`` already there (accumulation) is copied into the static buffer the graph adds to."""
        from engine.tensor import _make

        for leaf, static in zip(leaves, self.grad_statics, strict=True):
            if static is not None:
                static[...] = leaf.grad._data
                leaf.grad = _make(static, leaf._dtype, leaf._device)

    def after(self, leaves) -> None:
        """The host side of the launched run: the delivered ``.grad``, the optimizer steps' bookkeeping."""
        from engine.tensor import _make

        for leaf, array in zip(leaves, self.delivered, strict=True):
            leaf.grad = _make(array, leaf._dtype, leaf._device)
        for opt, stepped in zip(self.optimizers, self.stepped, strict=True):
            opt.replayed(stepped)

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

    def begin(self, arrays, leaves) -> tuple:
        import engine.cuda

        self.statics = [array.copy() for array in arrays]
        self.before = [leaf.grad for leaf in leaves]
        self.grad_statics = [None if leaf.grad is None else leaf.grad._data.copy() for leaf in leaves]
        self.grads_in(leaves)
        self.tensors = {}
        self.graph = engine.cuda.CUDAGraph()
        self._context = engine.cuda.graph(self.graph)
        self._context.__enter__()
        return tuple(self.statics)

    def end(self, scope: dict, leaves) -> None:
        self._context.__exit__(None, None, None)
        self.saved = {name: scope[name] for name in self.rebind}  # what later steps read, kept alive with the graph
        self.param_arrays = [(t, t._data) for t in self.params]
        self.param_arrays += [(p, p._data) for opt in self.optimizers for group in opt.optimizer.param_groups
                              for p in group["params"]]
        self.delivered = [leaf.grad._data for leaf in leaves]
        self.stepped = [list(opt.stepped) for opt in self.optimizers]
        self.captures += 1
        self.launch()  # NOTE: a capture runs nothing on the device: this launch is the call's one run

    def abandon(self, exc: BaseException, leaves) -> None:
        try:
            self._context.__exit__(type(exc), exc, None)
        except Exception:  # noqa: S110 - the capture is broken already; its error is the one reported
            pass
        for leaf, grad in zip(leaves, self.before, strict=True):  # the plain rerun delivers into what was there
            leaf.grad = grad
        self.graph = None
        self.reason = f"capture failed: {exc}"
        log.info("reduce-overhead: no CUDA graph, plain replay: %s", self.reason)

    def launch(self) -> None:
        assert self.graph is not None
        self.graph.replay()
        self.replays += 1
