"""``engine._inductor``: the code generator behind ``engine.compile`` (PyTorch's inductor contract), CPU and CUDA.

``compile_fx(gm, example_inputs)`` lowers a captured ``GraphModule`` to a flat program over raw
arrays (``lowering``), fuses elementwise chains and their trailing reductions into numba
kernels (``scheduler``, ``codegen``, cached by source in ``cache``), runs GEMMs and im2col
convolutions into preallocated ``out=`` buffers (``kernels``), plans intermediate buffers by
liveness, delivers gradients and reads ``.grad`` with inline code, runs ``SGD``/``Adam``/``AdamW`` steps
as one fused numba kernel per parameter (``optim``), runs Conv2d and tiled max-pool forward/backward pairs
of a training step as numba im2col/col2im/pool kernels around whole-batch GEMMs (``conv``, ``pool``),
and returns a callable with the graph's calling convention. Without numba the same program replays unfused as
NumPy ufuncs with ``out=`` buffers (and optimizer steps run eagerly).

CUDA inputs go through the same lowering, scheduling and buffer plan; only the code generation differs
(``cuda_codegen``): each fused pointwise group is one CuPy ``ElementwiseKernel``, each fused reduction group
one ``ReductionKernel`` per reduction (its pointwise prologue inlined) and an ``ElementwiseKernel`` epilogue,
generated as CUDA C and kept in a process-wide cache by source; GEMMs run through CuPy's matmul (cuBLAS) into
planned buffers; SGD/Adam/AdamW steps are one ``ElementwiseKernel`` per parameter; ops without a GPU lowering
(convolution, pooling, embedding, losses with index checks, dropout) run their eager kernel on the device
inside the replay, so nothing is copied to the host. float16 groups compute in float and store half; a graph
with dtypes the CUDA templates do not cover (bfloat16, int16, complex) replays its eager kernels on the device.
``mode="reduce-overhead"`` (and ``"max-autotune"``, as in PyTorch) replays each program's longest run of steps
without host effects from one CUDA graph (``cudagraphs``; a whole training step: forward, backward, the
``.grad`` delivery and the optimizer step, Adam made ``capturable``; ``zero_grad`` stays host code before the
launch): the arrays it reads are copied into static buffers,
its outputs live in the graph's memory, valid until the next call of the same compiled graph (clone one to
keep it), as with PyTorch's cudagraph trees; when the capture fails (a host sync) the program replays without
a graph and the reason is logged.

Example:
    >>> gm = engine.fx.GraphModule(state, graph)  # doctest: +SKIP
    >>> fn = compile_fx(gm, [x])  # doctest: +SKIP
    >>> print(fn.source)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from engine._inductor.ir import Unsupported
from engine._inductor.lowering import Lowerer

__all__ = ["CompiledFxGraph", "Unsupported", "compile_fx", "has_numba"]

log = logging.getLogger("engine._inductor")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")  # as PyTorch: max-autotune-no-cudagraphs opts out
output_code_log = logging.getLogger("engine._inductor.output_code")
_numba_warned = False


def has_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _use_numba() -> bool:
    global _numba_warned
    if has_numba():
        return True
    if not _numba_warned:
        _numba_warned = True
        warnings.warn("engine.compile: numba is not installed, so graphs replay unfused (NumPy with preallocated "
                      "buffers); install the 'compile' extra (pip install numba) for fused kernels.",
                      RuntimeWarning, stacklevel=3)
    return False


def _signature(args) -> tuple:
    from engine.tensor import Tensor

    key: list = []
    for a in args:
        if isinstance(a, Tensor):
            key.append((a._data.shape, a._data.dtype.str, str(a._device)))
        elif isinstance(a, int | float | bool | str | type(None)):
            key.append((type(a).__name__, a))
        else:
            key.append(("id", id(a)))
    return tuple(key)


def _input_meta(args) -> list:
    from engine.tensor import Tensor

    return [(tuple(a._data.shape), a._data.dtype) if isinstance(a, Tensor) else ((), None) for a in args]


# NOTE: numba compiles these; float16 and ml_dtypes' bfloat16 (autocast) replay as NumPy ufuncs instead.
def _numba_dtype(dtype) -> bool:
    dtype = np.dtype(dtype)
    return dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize >= 4)


def _numba_dtypes_only(meta: dict, args) -> bool:
    dtypes = [dtype for _, dtype in meta.values()] + [dtype for _, dtype in _input_meta(args) if dtype is not None]
    return all(_numba_dtype(d) for d in dtypes)


class CompiledFxGraph:
    """The compiled callable: one program per input signature (shapes, dtypes), built on demand.

    A signature seen for the first time after the example inputs' one is run once through the
    graph's eager kernels (recording every node's shape and dtype, consuming random numbers and
    applying in-place updates exactly once), then compiled for the next call.

    Intermediate buffers belong to the compiled program and are reused by every call (outputs are fresh),
    so one compiled graph must not run in two threads at once, as with a captured CUDA graph.

    Attributes:
        source: the generated ``call`` of the example inputs' program (Python).
        kernel_sources: its numba kernels' sources.
        info: what was fused and what fell back to eager kernels.
    """

    def __init__(self, gm, example_inputs, mode: str | None = None, device=None):
        self.gm = gm
        self.mode = mode
        self.device = device  # the CUDA device of the inputs, None on CPU
        self.use_numba = device is None and _use_numba()
        self.programs: dict = {}
        self._last_key: tuple | None = None
        self._last_call: Any = None
        key = _signature(example_inputs)
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        meta = _graph_meta(gm)
        if len(placeholders) == len(example_inputs) and all(
                meta.get(p) is None or (tuple(meta[p][0]), np.dtype(meta[p][1])) == m
                for p, m in zip(placeholders, _input_meta(example_inputs), strict=True) if m[1] is not None):
            self._build(key, meta, example_inputs)

    def _build(self, key, meta, args):
        from engine._inductor.wrapper import CompiledProgram

        lowerer = Lowerer(self.gm, meta, self.device)
        prog = lowerer.run(_input_meta(args))
        compiled = CompiledProgram(prog, self.use_numba and _numba_dtypes_only(meta, args), self.device)
        compiled.ns["_wrap"] = _fast_wrap(self.device)
        compiled.fallbacks = lowerer.fallbacks
        if self.device is not None and self.mode in CUDAGRAPH_MODES:
            from engine._inductor.cudagraphs import CUDAGraphRunner

            compiled.cudagraph = CUDAGraphRunner(compiled)
            compiled.call = compiled.cudagraph
        self.programs[key] = compiled
        if output_code_log.isEnabledFor(logging.DEBUG):
            output_code_log.debug("Output code:\n%s\n%s", compiled.source, "\n".join(compiled.kernel_sources))
        return compiled

    def __call__(self, *args):
        key = _signature(args)
        if key == self._last_key:
            return self._last_call(*args)
        compiled = self.programs.get(key)
        if compiled is None:
            return self._record_and_build(key, args)
        self._last_key, self._last_call = key, compiled.call
        return compiled.call(*args)

    def _record_and_build(self, key, args):
        meta: dict = {}
        out = _run_recording(self.gm, args, meta)
        self._build(key, meta, args)
        return out

    # ----- debugging --------------------------------------------------------------------------------
    @property
    def _first(self):
        if not self.programs:
            raise RuntimeError("nothing compiled yet: call the compiled graph once")
        return next(iter(self.programs.values()))

    @property
    def source(self) -> str:
        return self._first.source

    @property
    def kernel_sources(self) -> list[str]:
        return list(self._first.kernel_sources)

    @property
    def info(self) -> dict:
        c = self._first
        info = {"numba": self.use_numba, "kernels": c.n_kernels, "steps": len(c.schedule.steps),
                "fallbacks": list(c.fallbacks), "buffers": len(c.plan.slots), "buffer_bytes": c.plan.nbytes,
                "programs": len(self.programs), "device": str(self.device or "cpu")}
        if c.cudagraph is not None:
            info["cudagraph"] = c.cudagraph.stats()
        return info

    def print_output_code(self) -> None:
        print(self.source)
        for s in self.kernel_sources:
            print(s)


def compile_fx(gm, example_inputs, mode: str | None = None, options: dict | None = None):
    """Compile ``gm`` for inputs like ``example_inputs``: returns a callable with ``gm``'s signature.

    Args:
        gm: an ``engine.fx.GraphModule`` (any graph the engine's capture produces).
        example_inputs: the tensors (and Python values) its placeholders take, in order.
        mode: ``engine.compile``'s mode (``"default"``, ``"reduce-overhead"``, ``"max-autotune"``);
            on CPU all compile alike; on CUDA ``"reduce-overhead"`` and ``"max-autotune"`` replay from a
            CUDA graph (``"max-autotune-no-cudagraphs"`` does not), as in PyTorch.
        options: backend options; none are defined yet (an unknown key is an error).

    Inputs on a CUDA device compile to CuPy kernels (see the module docstring); inputs on several devices,
    or dtypes the CUDA code generator does not cover, replay the graph's eager kernels.
    """
    from engine._dynamo.replay import make_runner
    from engine.tensor import Tensor

    if options:
        raise RuntimeError(f"Unexpected optimization option {next(iter(options))}, known options: none")
    devices = {a._device for a in example_inputs if isinstance(a, Tensor)}
    devices |= {t._device for t in _graph_tensors(gm)}
    if any(d.type != "cpu" for d in devices):
        if len(devices) != 1 or next(iter(devices)).type != "cuda":
            log.info("engine._inductor: inputs on %s; running the graph eagerly", sorted(map(str, devices)))
            return make_runner(gm)
        from engine._inductor.cuda_codegen import supported_dtype

        dtypes = {dtype for _, dtype in _graph_meta(gm).values()}
        dtypes |= {dtype for _, dtype in _input_meta(example_inputs) if dtype is not None}
        unsupported = sorted(str(d) for d in dtypes if not supported_dtype(d))
        if unsupported:
            log.info("engine._inductor: no CUDA kernels for %s; the graph replays its eager kernels on the device",
                     ", ".join(unsupported))
            return make_runner(gm)
        return CompiledFxGraph(gm, list(example_inputs), mode, next(iter(devices)))
    return CompiledFxGraph(gm, list(example_inputs), mode)


def _graph_tensors(gm) -> list:
    from engine.tensor import Tensor

    found = []
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            value = gm.get_attr_value(node.target)
            if isinstance(value, Tensor):
                found.append(value)
    return found


def _graph_meta(gm) -> dict:
    meta = {}
    for node in gm.graph.nodes:
        shape, dtype = node.meta.get("shape"), node.meta.get("dtype")
        if shape is not None and dtype is not None:
            meta[node] = (tuple(int(s) for s in shape), dtype.np if hasattr(dtype, "np") else np.dtype(dtype))
    return meta


def _run_recording(gm, args, meta: dict):
    """Run ``gm`` eagerly (no grad), recording each node's output shape and dtype into ``meta``."""
    from engine.autograd.grad_mode import no_grad
    from engine.fx import registry
    from engine.fx.graph import map_arg
    from engine.tensor import Tensor

    env: dict = {}
    load = env.__getitem__
    position = 0
    with no_grad():
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                env[node] = args[position]
                position += 1
            elif node.op == "get_attr":
                env[node] = gm.get_attr_value(node.target)
            elif node.op == "call_function":
                a = map_arg(node.args, load)
                value = node.target(*a, **map_arg(node.kwargs, load))
                entry = registry.of(node.target)
                env[node] = a[0] if entry is not None and entry.mutates else value
            else:
                result = map_arg(node.args[0], load)
                break
            value = env[node]
            if isinstance(value, Tensor):
                meta[node] = (tuple(value._data.shape), value._data.dtype)
    return result


def _fast_wrap(dev=None):
    from engine.device import device
    from engine.dtypes import FROM_NUMPY
    from engine.tensor import _make, wrap

    dev = dev if dev is not None else device("cpu")
    array_type = np.ndarray if dev.type == "cpu" else dev.xp.ndarray

    def _wrap(array):
        dtype = FROM_NUMPY.get(array.dtype) if isinstance(array, array_type) else None
        return _make(array, dtype, dev) if dtype is not None else wrap(array, dev)

    return _wrap
