"""The generated ``call``: a flat Python function over arrays that runs the scheduled steps.

One wrapper for both devices: on CUDA the arrays are CuPy's, each fused group calls its CuPy kernels
(``cuda_codegen``) instead of a numba kernel, GEMMs run through ``xp.matmul`` (cuBLAS) into their buffers and
fallbacks wrap device arrays as tensors on the program's device, so a replay never leaves the device.
It unpacks the input tensors' arrays once, reads each parameter's current array, calls the fused
kernels, GEMMs and fallbacks in order with their planned buffers, and wraps only the outputs in
tensors. Its source (``CompiledProgram.source``) is kept for debugging, like inductor's output code.
"""

from __future__ import annotations

import numpy as np

from engine._inductor import kernels, pointwise
from engine._inductor.codegen import KernelSource, literal
from engine._inductor.ir import Program, Value, map_values
from engine._inductor.scheduler import BufferPlan, Schedule


def _fallback_runner(fn, call_args, call_kwargs, mutates: bool, device=None):
    """A closure running ``fn`` (an eager kernel) with tensors over the arrays it is given, in order
    (tensors on ``device``, the CPU by default)."""
    from engine.autograd.grad_mode import no_grad
    from engine.autograd.grad_mode import state as grad_state
    from engine.dtypes import FROM_NUMPY, from_numpy_dtype
    from engine.tensor import Tensor, _make

    if device is None:
        from engine.device import device as make_device

        device = make_device("cpu")
    array_type = np.ndarray if device.type == "cpu" else device.xp.ndarray

    def as_tensor(a):
        if isinstance(a, array_type):
            dtype = FROM_NUMPY.get(a.dtype) or from_numpy_dtype(a.dtype)
            return _make(a, dtype, device)
        return a

    def unwrap(r):
        if isinstance(r, Tensor):
            return r._data
        if isinstance(r, tuple | list):
            return type(r)(unwrap(x) for x in r) if type(r) in (tuple, list) else tuple(unwrap(x) for x in r)
        if isinstance(r, np.generic):
            return np.asarray(r)
        return r

    # NOTE: the common case (values only at top level) rebuilds the arguments by position, without recursion
    top = [i for i, a in enumerate(call_args) if isinstance(a, Value)]
    flat = not call_kwargs and all(not _has_value(a) for i, a in enumerate(call_args) if i not in top)
    template = list(call_args)

    def run(*values):
        if flat:
            args = template.copy()
            for i, v in zip(top, values, strict=True):
                args[i] = as_tensor(v)
            kwargs = {}
        else:
            it = iter(values)
            args, kwargs = map_values((call_args, call_kwargs), lambda _v: as_tensor(next(it)))
        if grad_state.enabled:
            with no_grad():
                result = fn(*args, **kwargs)
        else:
            result = fn(*args, **kwargs)
        if mutates:
            return None
        return unwrap(result)

    run.__name__ = getattr(fn, "__name__", "fallback")
    return run


def _has_value(a) -> bool:
    found: list = []
    map_values(a, found.append)
    return bool(found)


class CompiledProgram:
    """One program compiled for one set of input shapes: ``call(*tensors)`` and its ``source``."""

    def __init__(self, prog: Program, use_numba: bool, device=None):
        self.prog = prog
        self.device = device
        self.cuda = device is not None and device.type == "cuda"
        self.xp = device.xp if self.cuda else np
        fusable = None
        if self.cuda:
            from engine._inductor import cuda_codegen

            fusable = cuda_codegen.fusable
        self.schedule = Schedule(prog, fuse=use_numba or self.cuda, fusable=fusable)
        self.plan = BufferPlan(self.schedule)
        self.use_numba = use_numba
        self.kernel_sources: list[str] = []
        self.fallbacks: list[str] = []
        self.cudagraph = None  # a cudagraphs.CUDAGraphRunner in reduce-overhead mode on CUDA
        self.ns: dict = {"np": np, "xp": self.xp, "kernels": kernels, "_pw": pointwise}
        self.source = self._generate()
        code = compile(self.source, "<engine._inductor generated call>", "exec")
        exec(code, self.ns)  # noqa: S102 - source generated above from the lowered program
        self.call = self.ns["call"]

    # ----- naming -------------------------------------------------------------------------------------
    def _bind(self, prefix: str, obj) -> str:
        name = f"_{prefix}{len(self.ns)}"
        while name in self.ns:
            name += "_"
        self.ns[name] = obj
        return name

    def _ref(self, v: Value) -> str:
        """The expression of value ``v`` as an array inside ``call``."""
        return v.name

    # ----- source --------------------------------------------------------------------------------------
    def _generate(self) -> str:
        prog, plan = self.prog, self.plan
        pooled = plan.allocate(self.xp)
        self.buffer_views: dict = {}
        lines = ["def call(*args):"]
        body: list[str] = []
        n_in = len(prog.inputs)
        if n_in:
            body.append(f"{', '.join(f't_{v.name}' for v in prog.inputs)}{',' if n_in == 1 else ''} = args")
        for v in prog.inputs:
            body.append(f"{v.name} = t_{v.name}._data" if v.kind == "input" and v.dtype is not None
                        else f"{v.name} = t_{v.name}")
        for v in prog.params:
            if "tensor" in v.attrs:
                self.ns[f"t_{v.name}"] = v.attrs["tensor"]
                if v.users:
                    body.append(f"{v.name} = t_{v.name}._data")
            else:  # a constant of the lowering (an arange, a causal mask): on the program's device once
                self.ns[v.name] = self.xp.asarray(v.attrs["array"]) if self.cuda else v.attrs["array"]
        for v, slot in plan.slot_of.items():
            self.ns[v.name] = pooled[slot][:v.numel].reshape(v.shape)
        self.head = list(body)  # the code of each part, kept for a CUDA graph over part of the steps
        self.step_code: list[list[str]] = []
        for step in self.schedule.steps:
            self.step_code.append(self._step(step))
            body += self.step_code[-1]
        self.tail = f"return {self._output(prog.output)}"
        body.append(self.tail)
        return "\n".join(lines + ["    " + b for b in body]) + "\n"

    def _fresh(self, v: Value) -> list[str]:
        if v in self.plan.fresh and v not in self.plan.slot_of:
            return [f"{v.name} = xp.empty({v.shape!r}, np.{v.dtype.name})"]
        return []

    def _arg(self, a) -> str:
        if isinstance(a, Value):
            return self._ref(a)
        if isinstance(a, np.dtype):
            return f"np.{a.name}"
        return literal(a)

    def _tensor_arg(self, a: Value) -> str:
        """Fallbacks get the caller's own tensors for inputs and parameters (their identity matters)."""
        if a.kind == "input" or (a.kind == "param" and "tensor" in a.attrs):
            return f"t_{a.name}"
        return a.name

    def _step(self, step) -> list[str]:
        v = step.value
        if step.kind == "kernel":
            return self._kernel(step.group)
        out = self._fresh(v) if v is not None else []
        if step.kind == "pointwise":
            fn = pointwise.OPS[v.op][1]
            args = ", ".join(self._arg(a) for a in v.args)
            if isinstance(fn, str):
                out.append(f"np.{fn}({args}, out={v.name}, casting='unsafe')")
            else:
                out.append(f"_pw.{fn.__name__}({v.name}, {args})")  # type: ignore[attr-defined]
        elif step.kind == "reduce":
            (a,) = v.args
            fn = {"sum": "xp.sum", "max": "xp.max", "min": "xp.min"}[v.op]
            out.append(f"{fn}({a.name}, axis={v.attrs['axes']!r}, keepdims={v.attrs['keepdim']}, out={v.name})")
        elif step.kind == "view":
            base = self._stable(v.args[0])
            view = None
            if base is not None:  # a view of a buffer of the program: the same array at every call
                view = eval(self._view_code(v), self.ns, {v.args[0].name: base})  # noqa: S307
            if view is not None and self.xp.may_share_memory(view, base):
                self.ns[v.name] = view
            else:  # NOTE: a reshape that had to copy must copy at every call
                out.append(f"{v.name} = {self._view_code(v)}")
        elif step.kind == "extern":
            fn = self._bind("ext", self._device_extern(v.op))
            names = [a.name for a in v.args] + [literal(p) if isinstance(p, int | float) else self._bind("c", p)
                                                for p in v.attrs.get("params", ())]
            if v.attrs.get("out"):
                out.append(f"{fn}({', '.join([*names, v.name])})")
            else:
                out.append(f"{v.name} = {fn}({', '.join(names)})")
        elif step.kind == "fallback":
            runner = _fallback_runner(v.op, v.attrs["call_args"], v.attrs["call_kwargs"], v.attrs["mutates"],
                                      self.device)
            fn = self._bind(f"fb_{runner.__name__}_", runner)
            args = ", ".join(self._tensor_arg(a) for a in v.attrs["extra_inputs"])
            out.append(f"{v.name} = {fn}({args})")
        elif step.kind == "grad":  # the live .grad of a leaf (graph_ops.read_grad)
            (leaf,) = v.args
            out.append(f"t_{v.name} = {self._tensor_arg(leaf)}.grad")
            if v.users:
                out.append(f"{v.name} = t_{v.name}._data")
        elif step.kind == "effect":
            out += self._effect(v)
        elif step.kind == "item":
            (obj,) = v.args
            out.append(f"{v.name} = {obj.name}[{self._bind('i', v.attrs['index'])}]")
        return out

    def _stable(self, v: Value):
        """The array of ``v`` when it is a pooled buffer (or a view of one) bound once for every call."""
        if v in self.plan.slot_of or (v.kind == "view" and isinstance(self.ns.get(v.name), self.xp.ndarray)):
            return self.ns[v.name]
        return None

    def _effect(self, v: Value) -> list[str]:
        """Inline code of the frontend's gradient nodes and of lowered optimizer steps."""
        if v.op == "clear_grad":
            return [f"{self._tensor_arg(v.args[0])}.grad = None"]
        if v.op == "deliver_grads":  # as the autograd engine accumulates: a new .grad, never a buffer of ours
            make = self._bind("make", _make_tensor())
            lines = []
            for leaf, g in zip(v.args[::2], v.args[1::2], strict=True):
                t = self._tensor_arg(leaf)
                first = f"{g.name}.copy()" if g.dtype == leaf.dtype else f"{g.name}.astype({t}._dtype.np)"
                lines += [f"_g = {t}.grad",
                          f"{t}.grad = {make}({first}, {t}._dtype, {t}._device) if _g is None "
                          f"else {make}((_g._data + {g.name}).astype({t}._dtype.np, copy=False), {t}._dtype, "
                          f"{t}._device)"]
            return lines
        if v.op == "optimizer_step":
            fn = self._bind("opt_step", v.attrs["runner"])
            return [f"{fn}()"]
        raise AssertionError(f"unknown effect {v.op}")

    def _view_code(self, v: Value) -> str:
        from engine._inductor import lowering

        (a,) = v.args
        params = v.attrs["params"]
        if v.op is lowering._reshape_fn:
            return f"{a.name}.reshape({params[0]!r})"
        if v.op is lowering._transpose_fn:
            return f"{a.name}.transpose({params[0]!r})"
        if v.op is lowering._expand_fn:
            return f"xp.broadcast_to({a.name}, {params[0]!r})"
        if v.op is lowering._index_fn:
            return f"{a.name}[{self._bind('ix', params[0])}]"
        return f"{self._bind('view', v.op)}({a.name}, *{self._bind('vp', params)})"

    def _device_extern(self, fn):
        """The array kernel ``fn`` for this program's device (the lowering admits only these on CUDA)."""
        if self.cuda and fn is kernels.matmul:
            return kernels.device_matmul
        return fn

    def _cuda_kernel(self, g) -> list[str]:
        from engine._inductor.cuda_codegen import GroupKernels

        gk = GroupKernels(g, self.xp)
        self.kernel_sources += gk.sources
        name = self._bind("kernel_", gk)
        lines: list[str] = []
        for o in gk.outputs:
            lines += self._fresh(o)
        lines.append(f"{name}({', '.join([a.name for a, _ in gk.uses] + [o.name for o in gk.outputs])})")
        return lines

    def _kernel(self, g) -> list[str]:
        from engine._inductor.cache import load_kernel

        if self.cuda:
            return self._cuda_kernel(g)
        ks = KernelSource(g, self.plan.fresh)
        self.kernel_sources.append(ks.source)
        name = self._bind("kernel_", load_kernel(ks.source))
        lines = []
        args = []
        for (a, _aligned), shape in zip(ks.uses, ks.use_shapes, strict=True):
            stable = self._stable(a)
            if a.shape == shape:
                args.append(a.name)
            elif stable is not None and np.may_share_memory(stable.reshape(shape), stable):
                args.append(self._bind(f"{a.name}_k_", stable.reshape(shape)))
            else:
                args.append(f"{a.name}.reshape({shape!r})")
        for o, shape, fresh in zip(ks.outputs, ks.out_shapes, ks.fresh, strict=True):
            if fresh:
                lines += self._fresh(o)
                args.append(o.name if o.shape == shape else f"{o.name}.reshape({shape!r})")
            else:
                view = self.ns[o.name]
                args.append(o.name if view.shape == shape else self._bind(f"{o.name}_k_", view.reshape(shape)))
        args += [str(e) for e in ks.extents]
        lines.append(f"{name}({', '.join(args)})")
        return lines

    def _output(self, out) -> str:
        if isinstance(out, Value):
            if out.kind == "input" or (out.kind == "param" and "tensor" in out.attrs) or out.kind == "grad":
                return f"t_{out.name}"
            if out.kind == "param":  # a constant of the program: the caller gets its own copy
                return f"_wrap({out.name}.copy())"
            if not out.is_array:
                return out.name
            return f"_wrap({out.name})"
        if isinstance(out, tuple):
            inner = ", ".join(self._output(o) for o in out)
            return f"({inner},)" if len(out) == 1 else f"({inner})"
        if isinstance(out, list):
            return "[" + ", ".join(self._output(o) for o in out) + "]"
        if isinstance(out, dict):
            return "{" + ", ".join(f"{self._bind('k', k)}: {self._output(o)}" for k, o in out.items()) + "}"
        if out is None or isinstance(out, bool | int | float):
            return repr(out) if out is None or isinstance(out, bool) else literal(out)
        return self._bind("const", out)

    @property
    def n_kernels(self) -> int:
        return len(self.kernel_sources)


def _make_tensor():
    from engine.tensor import _make

    return _make


def _wrap(array):
    from engine.device import device
    from engine.tensor import wrap

    return wrap(array, device("cpu"))
