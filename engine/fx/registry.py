"""The op registry: one entry per engine op, holding everything the engine knows about it.

An entry has the op's public name (``engine.relu``, ``engine.nn.functional.linear``, ``Tensor.view``),
its eager kernel (the function that computes it), the public callable that graph capture records
and a graph node runs, and slots that later layers fill: ``onnx`` (a lowering to ONNX nodes) and
``quantized`` (its int8 form). ``install()`` builds the entries from the engine's public functions
and tensor methods and puts a thin recording wrapper in their place, so every op is capturable
without a second copy of its semantics.
"""

from __future__ import annotations

import functools
import operator
import sys
import types
from dataclasses import dataclass
from typing import Any

from engine.fx import _state

# Public functions that return no tensor (or only read data) are not ops of a graph.
_NOT_OPS = {
    "allclose", "equal", "is_floating_point", "numel", "result_type", "promote_types", "broadcast_shapes",
    "is_tensor", "tensor", "as_tensor", "from_numpy", "asarray", "is_nonzero", "is_grad_enabled",
}
# Tensor methods that are metadata, protocols or autograd plumbing, not graph ops.
_NOT_METHODS = {
    "__init__", "__new__", "size", "dim", "ndimension", "numel", "nelement", "element_size", "stride",
    "is_contiguous", "is_floating_point", "is_complex", "requires_grad_", "retain_grad", "register_hook",
    "backward", "numpy", "__array__", "item", "tolist", "__len__", "__iter__", "__bool__", "__float__",
    "__int__", "__index__", "__format__", "__repr__", "__reduce_ex__", "__deepcopy__", "type", "allclose",
    "equal", "detach_", "is_nonzero", "is_same_size", "is_signed", "is_distributed", "get_device", "data_ptr",
    "const_data_ptr", "storage_offset", "dim_order", "register_post_accumulate_grad_hook", "apply_", "map_", "map2_",
    "resize_", "resize_as_", "new", "q_scale", "q_zero_point", "q_per_channel_scales", "q_per_channel_zero_points",
    "q_per_channel_axis", "int_repr", "qscheme",
}
_OP_MODULES = ("engine.ops.", "engine.creation", "engine.nn.functional")
_IMPURE_WORDS = ("rand", "dropout", "normal", "bernoulli", "multinomial", "uniform")
_PROPERTIES = ("T", "mT", "H", "mH", "data")


@dataclass(eq=False)
class OpDef:
    """One op: its name, eager kernel, recorded entry point and the slots later layers fill."""

    name: str
    fn: Any  # the eager kernel
    call: Any = None  # the public callable: records under capture, else runs ``fn``
    impure: bool = False  # random or in-place: never removed or folded
    mutates: bool = False  # writes its first argument and returns None (``x[i] = v``)
    onnx: Any = None  # ONNX lowering: fn(ctx, node, *inputs) -> outputs (engine.onnx)
    quantized: Any = None  # quantized form (engine.ao.quantization)
    decompose: bool = False  # a lowering may record the ops inside instead (its sizes stay symbolic)

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1].strip("_") or "op"


REGISTRY: dict[str, OpDef] = {}
# Other public names of a registered op (``engine.conv2d`` is ``nn.functional.conv2d``): they resolve to
# its entry, so a graph saved under either name loads, but a capture records the entry's own name.
ALIASES: dict[str, OpDef] = {}
_BY_CALLABLE: dict[int, OpDef] = {}
_installed = False


def register(name: str, fn, *, impure: bool | None = None, mutates: bool = False, wrap: bool = True) -> OpDef:
    """Add an op; returns its entry (whose ``call`` is the callable to expose publicly)."""
    if name in REGISTRY:
        return REGISTRY[name]
    short = name.rsplit(".", 1)[-1]
    if impure is None:
        impure = mutates or (short.endswith("_") and not short.endswith("__")) or short.startswith("__i") \
            or any(w in short for w in _IMPURE_WORDS)
    entry = OpDef(name, fn, impure=impure, mutates=mutates)
    entry.call = _recording(entry) if wrap else fn
    REGISTRY[name] = entry
    _BY_CALLABLE[id(fn)] = entry
    _BY_CALLABLE[id(entry.call)] = entry
    return entry


def lookup(name: str) -> OpDef:
    """The entry named ``name``; a clear error names an op this engine does not have."""
    install()
    try:
        return REGISTRY[name] if name in REGISTRY else ALIASES[name]
    except KeyError:
        raise RuntimeError(f"unknown op {name!r}: this engine has no such op (saved by a newer engine?)") from None


def of(fn) -> OpDef | None:
    """The entry of a public callable or eager kernel, or None."""
    return _BY_CALLABLE.get(id(fn))


def register_lowering(name: str, lowering) -> None:
    """Attach an ONNX lowering to op ``name`` (used by engine.onnx)."""
    lookup(name).onnx = lowering


def register_quantized(name: str, form) -> None:
    """Attach the quantized form of op ``name`` (used by engine.ao.quantization)."""
    lookup(name).quantized = form


def _recording(entry: OpDef):
    fn = entry.fn
    name = entry.name
    state = _state.STATE

    @functools.wraps(fn)
    def op(*args, **kwargs):
        tracer = state.tracer
        if tracer is None:
            profiler = state.profiler  # engine.profiler: one attribute check when nothing profiles
            if profiler is None:
                return fn(*args, **kwargs)
            return profiler.call_op(name, fn, args, kwargs)
        return tracer.call_op(entry, args, kwargs)

    return op


def install() -> None:
    """Register every public op and put the recording wrappers in their place (called once)."""
    global _installed
    if _installed:
        return
    _installed = True
    import engine
    import engine.nn.functional as F
    from engine.nn.functional import toplevel as aten_spellings
    from engine.tensor import Tensor

    deferred = []
    for name in engine.__all__:
        fn = getattr(engine, name, None)
        if _is_op(fn, name):
            if getattr(aten_spellings, name, None) is fn or name.startswith("unsafe_"):
                deferred.append((f"engine.{name}", fn))  # ``engine.conv2d`` records as F.conv2d, as before it existed
            else:
                register(f"engine.{name}", fn)
    for name in F.__all__:
        fn = getattr(F, name, None)
        if _is_op(fn, name):
            _register_or_alias(f"engine.nn.functional.{name}", fn)
    for name, fn in deferred:
        _register_or_alias(name, fn)
    methods = {}
    for name, fn in list(vars(Tensor).items()):
        if isinstance(fn, types.FunctionType) and name not in _NOT_METHODS:
            entry = _register_or_alias(f"Tensor.{name}", fn, mutates=name == "__setitem__")
            methods[name] = entry.call
    for name in _PROPERTIES:
        prop = vars(Tensor)[name]
        entry = register(f"Tensor.{name}", prop.fget)
        methods[name] = property(entry.call, prop.fset, prop.fdel, prop.__doc__)
    for name in ("add", "sub", "mul", "floordiv", "mod", "neg", "getitem", "truediv", "pow"):
        register(f"operator.{name}", getattr(operator, name), wrap=False)
    for name, value in methods.items():
        setattr(Tensor, name, value)
    _rebind_modules()
    from engine.fx import tracer

    tracer.install_tensor_hooks(Tensor)


def _register_or_alias(name: str, fn, **kwargs) -> OpDef:
    """The entry of ``fn``: registered under ``name``, or ``name`` made an alias of the entry it already has."""
    entry = _BY_CALLABLE.get(id(fn))
    if entry is None:
        return register(name, fn, **kwargs)
    if entry.name != name:
        ALIASES.setdefault(name, entry)
    return entry


def _is_op(fn, name: str) -> bool:
    return (isinstance(fn, types.FunctionType) and name not in _NOT_OPS and not name.startswith("_")
            and fn.__module__.startswith(_OP_MODULES))


def _rebind_modules() -> None:
    # NOTE: engine modules bound the kernels at import time; point those names at the wrappers.
    for mod_name, module in list(sys.modules.items()):
        if module is None or not (mod_name == "engine" or mod_name.startswith("engine.")):
            continue
        if mod_name.startswith("engine.fx"):
            continue
        space = vars(module)
        for key, value in list(space.items()):
            if isinstance(value, types.FunctionType):
                entry = _BY_CALLABLE.get(id(value))
                if entry is not None and value is entry.fn and entry.call is not entry.fn:
                    space[key] = entry.call
