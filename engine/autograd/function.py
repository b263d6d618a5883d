"""``Function``: one differentiable operation; an instance is both the ctx and the graph node."""

from __future__ import annotations

import numpy as np

from engine.autograd.grad_mode import no_grad, state
from engine.backend import fp_ignore, fp_restore
from engine.dtypes import FROM_NUMPY
from engine.tensor import Tensor, wrap

_new = object.__new__
_generic = np.generic
_capture = None  # set by engine.fx while a trace records: every Function.apply goes through it

FREED_MESSAGE = ("Trying to backward through the graph a second time (or directly access saved tensors "
                 "after they have already been freed). Saved intermediate values of the graph are freed "
                 "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
                 "backward through the graph a second time or if you need to access saved tensors after "
                 "calling backward.")


class _SavedOutput:
    """An output saved for backward, kept as data + version so the node holds no cycle."""

    __slots__ = ("data", "device", "dtype", "output_nr", "vc", "version")

    def __init__(self, t: Tensor, version: int):
        self.data, self.dtype, self.device = t._data, t._dtype, t._device
        self.vc, self.version, self.output_nr = t._vc, version, t._output_nr

    def unpack(self, node, as_array: bool = False):
        if self.vc[0] != self.version:
            raise _modified_error(self.data.shape, self.dtype, self.vc[0], self.version)
        if as_array:
            return self.data
        t = wrap(self.data, self.device)
        t._vc = self.vc
        if state.enabled:  # create_graph: the output stays connected to its node
            t._requires_grad = True
            t.grad_fn = node
            t._output_nr = self.output_nr
        return t


def _modified_error(shape, dtype, found: int, expected: int) -> RuntimeError:
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"[engine.{dtype.name} {list(shape)}] is at version {found}; expected version {expected} instead. "
        "Hint: clone the tensor before modifying it in place, or do the in-place change out of place.")


class Function:
    """Base class of differentiable operations.

    Subclass it with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` and call
    ``MyFn.apply(*args)``. ``forward`` runs without graph recording; ``backward`` returns one
    gradient (or None) per ``forward`` argument and must use engine ops so that
    ``create_graph=True`` can differentiate it again.

    Example:
        >>> class Square(Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x * x
        ...     @staticmethod
        ...     def backward(ctx, grad):
        ...         (x,) = ctx.saved_tensors
        ...         return 2 * x * grad
    """

    # Class defaults keep per-node work to the attributes an op actually uses.
    _builtin = False
    _view = False
    _quiet = False  # NumPy floating-point warnings silenced in forward (inf/nan are valid results)
    _array_backward = False  # backward also works on raw arrays (see engine.ops.grad_math)
    _saves_output = False  # built-in ops whose backward reads ``ctx.output``
    _output = None
    _recording = False
    _n_out = 1
    _saved = ()
    _versions = ()
    _pre_hooks = None
    _retained = None
    _out_meta = None
    _non_differentiable = ()
    _materialize_grads = True
    needs_input_grad = ()
    _next = ()

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("a Function subclass must implement forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(f"{type(ctx).__name__} does not implement backward")

    # ----- ctx API --------------------------------------------------------------
    def save_for_backward(self, *tensors) -> None:
        """Keep tensors for backward; in-place changes to them are detected at backward time."""
        if not self._recording:
            return
        self._saved = tensors
        self._versions = tuple([t._vc[0] if isinstance(t, Tensor) else None for t in tensors])

    @property
    def saved_tensors(self) -> tuple:
        saved = self._saved
        if saved is None:
            raise RuntimeError(FREED_MESSAGE)
        # NOTE: during a backward without create_graph, built-in ops get raw arrays (state.arrays).
        arrays = state.arrays
        out = []
        for t, version in zip(saved, self._versions, strict=True):
            if version is None:
                out.append(t.unpack(self, arrays) if t.__class__ is _SavedOutput else t)
            elif t._vc[0] != version:
                raise _modified_error(t._data.shape, t._dtype, t._vc[0], version)
            else:
                out.append(t._data if arrays else t)
        return tuple(out)

    @property
    def output(self):
        """The op's own output, for built-in ops with ``_saves_output`` (an array in fast backward)."""
        data = self._output
        if data is None:
            raise RuntimeError(FREED_MESSAGE)
        vc = self._output_vc
        if vc[0] != 0:
            raise _modified_error(data.shape, self._output_dtype, vc[0], 0)
        if state.arrays:
            return data
        t = wrap(data, self._output_device)
        t._vc = vc
        if state.enabled:  # create_graph: the output stays connected to this node
            t._requires_grad = True
            t.grad_fn = self
        return t

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = tuple(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize_grads = value

    def mark_dirty(self, *tensors) -> None:
        """Accepted for PyTorch compatibility; in-place user Functions are not tracked specially."""

    # ----- graph node API ---------------------------------------------------------
    def name(self) -> str:
        return f"{type(self).__name__}Backward0"

    @property
    def next_functions(self) -> tuple:
        return tuple((None, 0) if e is None else (e[0] if not isinstance(e[0], Tensor) else AccumulateGrad(e[0]), e[1])
                     for e in self._next)

    def register_prehook(self, hook):
        from engine.tensor import RemovableHandle

        if self._pre_hooks is None:
            self._pre_hooks = {}
        hooks = self._pre_hooks.setdefault(0, [])
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    def _release(self) -> None:
        """Free saved values after backward (unless retain_graph)."""
        if self._saved:
            self._saved = None
        if self._saves_output:
            self._output = None
        self._release_extra()

    def _release_extra(self) -> None:
        """Ops that keep arrays on ctx drop them here."""

    # ----- application ------------------------------------------------------------
    @classmethod
    def apply(cls, *args):
        """Run the op, recording a graph node when grad mode is on and an input requires grad."""
        if _capture is not None:
            return _capture(cls, args)
        if state.enabled:
            for a in args:
                if isinstance(a, Tensor) and a._requires_grad:
                    return _new(cls)._record(args)
        if not cls._builtin:
            with no_grad():
                return cls.forward(_new(cls), *args)
        # NOTE: the no-grad path of built-in ops is the hottest code in the engine: kept inline.
        if cls._quiet:
            token = fp_ignore()
            try:
                data = cls.forward(_new(cls), *args)
            finally:
                fp_restore(token)
        else:
            data = cls.forward(_new(cls), *args)
        first = args[0]
        if isinstance(data, _generic):
            data = np.asarray(data)
        out = _new(Tensor)
        out._data = data
        try:
            out._dtype = FROM_NUMPY[data.dtype]
        except KeyError:
            out._dtype = wrap(data, None)._dtype
        out._device = first._device if isinstance(first, Tensor) else _device_of(args)
        out._requires_grad = False
        out.grad = None
        out.grad_fn = None
        out._output_nr = 0
        out._vc = [0]
        out._base = None
        out._hooks = None
        if cls._view:
            mark_view(out, first)
        return out

    def _record(self, args):
        # one edge per argument: (node, output_nr) of an input with history, (leaf, 0), or None
        self._next = edges = tuple([((a, 0) if a.grad_fn is None else (a.grad_fn, a._output_nr))
                                    if isinstance(a, Tensor) and a._requires_grad else None for a in args])
        self.needs_input_grad = tuple([e is not None for e in edges])
        self._recording = True
        cls = type(self)
        if cls._builtin:
            if cls._quiet:
                token = fp_ignore()
                try:
                    data = cls.forward(self, *args)
                finally:
                    fp_restore(token)
            else:
                data = cls.forward(self, *args)
            first = args[0]
            if isinstance(data, _generic):
                data = np.asarray(data)
            out = _new(Tensor)
            out._data = data
            try:
                out._dtype = dtype = FROM_NUMPY[data.dtype]
            except KeyError:
                out._dtype = dtype = wrap(data, None)._dtype
            out._device = first._device if isinstance(first, Tensor) else _device_of(args)
            out._output_nr = 0
            out._vc = [0]
            out._base = None
            out._hooks = None
            out.grad = None
            if cls._view:
                mark_view(out, first)
            if dtype.differentiable:
                out._requires_grad = True
                out.grad_fn = self
                if cls._saves_output:
                    # NOTE: the array and version counter, not the tensor: no reference cycle.
                    self._output = data
                    self._output_vc = out._vc
                    self._output_dtype = out._dtype
                    self._output_device = out._device
            else:
                out._requires_grad = False
                out.grad_fn = None
            return out
        with no_grad():
            result = cls.forward(self, *args)
        outputs = result if isinstance(result, tuple) else (result,)
        marked = []
        for nr, out in enumerate(outputs):
            if not isinstance(out, Tensor):
                marked.append(out)
                continue
            if any(out is a for a in args):  # forward returned an input: give it its own identity
                out = out.detach()
            if out._dtype.differentiable and id(out) not in self._non_differentiable:
                out._requires_grad = True
                out.grad_fn = self
                out._output_nr = nr
            marked.append(out)
        self._n_out = len(outputs)
        if self._n_out > 1:
            self._out_meta = [(o._data.shape, o._dtype, o._device) if isinstance(o, Tensor) else None
                              for o in marked]
        if self._saved:
            self._save_outputs(marked)
        return tuple(marked) if isinstance(result, tuple) else marked[0]

    def _save_outputs(self, outputs) -> None:
        """Replace saved tensors that are outputs of this node by cycle-free records."""
        saved = list(self._saved)
        versions = list(self._versions)
        changed = False
        for i, t in enumerate(saved):
            for out in outputs:
                if t is out and out.grad_fn is self:
                    saved[i] = _SavedOutput(out, versions[i])
                    versions[i] = None
                    changed = True
        if changed:
            self._saved = tuple(saved)
            self._versions = tuple(versions)


class Op(Function):
    """Base of built-in ops: ``forward`` reads input arrays and returns the output array."""

    _builtin = True


class AccumulateGrad:
    """The node a leaf's gradient flows into (exposed through ``next_functions``)."""

    __slots__ = ("variable",)

    def __init__(self, variable: Tensor):
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


def mark_view(out: Tensor, source: Tensor) -> None:
    """Make ``out`` share ``source``'s version counter when its array is a view of source's memory."""
    data, src = out._data, source._data
    base = data.base
    if base is not None and (base is src or base is src.base):
        out._vc = source._vc
        out._base = source if source._base is None else source._base


def _device_of(args):
    for a in args:
        if isinstance(a, Tensor):
            return a._device
    raise TypeError("an op needs at least one tensor argument")


def once_differentiable(fn):
    """Decorator for a backward that is not itself differentiable (runs it without recording)."""
    import functools

    @functools.wraps(fn)
    def wrapper(ctx, *grads):
        with no_grad():
            return fn(ctx, *grads)

    return wrapper
