"""``engine._inductor``: the CPU code generator behind ``engine.compile`` (PyTorch's inductor contract).

``compile_fx(gm, example_inputs)`` lowers a captured ``GraphModule`` to a flat program over raw
NumPy arrays (``lowering``), fuses elementwise chains and their trailing reductions into numba
kernels (``scheduler``, ``codegen``, cached by source in ``cache``), runs GEMMs and im2col
convolutions into preallocated ``out=`` buffers (``kernels``), plans intermediate buffers by
liveness, delivers gradients and reads ``.grad`` with inline code, runs ``SGD``/``Adam``/``AdamW`` steps
as one fused numba kernel per parameter (``optim``), runs Conv2d and tiled max-pool forward/backward pairs
of a training step as numba im2col/col2im/pool kernels around whole-batch GEMMs (``conv``, ``pool``),
and returns a callable with the graph's calling convention. Without numba the same program replays unfused as NumPy ufuncs with ``out=`` buffers
(and optimizer steps run eagerly).

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
            key.append((a._data.shape, a._data.dtype.str, a._device.type))
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

    def __init__(self, gm, example_inputs, mode: str | None = None):
        self.gm = gm
        self.mode = mode
        self.use_numba = _use_numba()
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

        lowerer = Lowerer(self.gm, meta)
        prog = lowerer.run(_input_meta(args))
        compiled = CompiledProgram(prog, self.use_numba and _numba_dtypes_only(meta, args))
        compiled.ns["_wrap"] = _fast_wrap()
        compiled.fallbacks = lowerer.fallbacks
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
        return {"numba": self.use_numba, "kernels": c.n_kernels, "steps": len(c.schedule.steps),
                "fallbacks": list(c.fallbacks), "buffers": len(c.plan.slots), "buffer_bytes": c.plan.nbytes,
                "programs": len(self.programs)}

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
            on CPU all three compile alike.
        options: backend options; none are defined on CPU yet (an unknown key is an error).

    Graphs on a CUDA device are returned as ``gm.forward`` (GPU code generation is not here yet).
    """
    from engine.tensor import Tensor

    if options:
        raise RuntimeError(f"Unexpected optimization option {next(iter(options))}, known options: none on CPU")
    for a in example_inputs:
        if isinstance(a, Tensor) and a._device.type != "cpu":
            log.info("engine._inductor: inputs on %s; running the graph eagerly (CPU code generation only)",
                     a._device)
            return gm.forward
    return CompiledFxGraph(gm, list(example_inputs), mode)


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


def _fast_wrap():
    from engine.device import device
    from engine.dtypes import FROM_NUMPY
    from engine.tensor import _make, wrap

    cpu = device("cpu")

    def _wrap(array):
        dtype = FROM_NUMPY.get(array.dtype) if isinstance(array, np.ndarray) else None
        return _make(array, dtype, cpu) if dtype is not None else wrap(array, cpu)

    return _wrap
