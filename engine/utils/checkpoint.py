"""Activation checkpointing, as ``torch.utils.checkpoint``: keep a segment's inputs, recompute it in backward.

The segment's outputs hang off one graph node (``CheckpointFunction``) whose edges lead to every tensor
requiring grad that the segment used from outside: its inputs and (non-reentrant) the parameters and
closure tensors it read. Those are found by watching ``Function.apply`` (the hook engine.fx also uses),
so the activations of the segment are dropped once the forward returns. In backward the segment runs
again with grad enabled (and the forward's RNG state), on detached stand-ins for those tensors, and is
differentiated with ``engine.autograd.grad``.
"""

from __future__ import annotations

import contextlib
import threading
import warnings

from engine import random as _random
from engine.autograd import function as _function
from engine.autograd.function import Function, _modified_error
from engine.autograd.grad_mode import enable_grad, no_grad, state
from engine.tensor import Tensor, wrap

__all__ = ["CheckpointError", "CheckpointFunction", "check_backward_validity", "checkpoint",
           "checkpoint_sequential", "detach_variable", "noop_context_fn"]

_DETERMINISM_CHECKS = ("default", "none")


class CheckpointError(RuntimeError):
    """The recomputed segment differs from the forward (shapes, dtypes, devices or count of outputs)."""


def noop_context_fn():
    return contextlib.nullcontext(), contextlib.nullcontext()


def detach_variable(inputs: tuple) -> tuple:
    """Tensors detached, keeping ``requires_grad``; other values unchanged."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: {type(inputs).__name__}")
    out = []
    for inp in inputs:
        if isinstance(inp, Tensor):
            x = inp.detach()
            x.requires_grad = inp.requires_grad
            inp = x
        out.append(inp)
    return tuple(out)


def check_backward_validity(inputs) -> None:
    if not any(inp.requires_grad for inp in inputs if isinstance(inp, Tensor)):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)


# ----- watching Function.apply ------------------------------------------------------------------
class _Frame:
    """Installed as ``Function.apply``'s hook while a segment runs; frames of nested checkpoints chain."""

    def __init__(self):
        prev = _function._capture
        self.prev = prev if isinstance(prev, _Frame) else None
        self.thread = threading.get_ident()
        self.ops: list[str] = []

    def substitute(self, args):
        return self.prev.substitute(args) if self.prev is not None else args

    def __call__(self, cls, args):
        if threading.get_ident() != self.thread:
            return _plain_apply(cls, args)
        seen = self.substitute(args)
        self.ops.append(cls.__name__)
        return self.after(_plain_apply(cls, seen), args, seen)

    def after(self, result, raw, seen):
        return result

    def __enter__(self):
        _function._capture = self
        return self

    def __exit__(self, *exc):
        _function._capture = self.prev


def _plain_apply(cls, args):
    hook = _function._capture
    _function._capture = None
    try:
        return cls.apply(*args)
    finally:
        _function._capture = hook


class _Discover(_Frame):
    """Forward: collect the outside tensors requiring grad that the segment's ops read."""

    def __init__(self):
        super().__init__()
        self.internal: set = set()  # nodes created inside the segment
        # id(raw) -> (raw, seen), in order of first use: ``raw`` is what the segment's code holds (the key of
        # its stand-in when recomputed), ``seen`` what the op got (an enclosing recomputation's stand-in)
        self.external: dict = {}

    def see(self, raw, seen) -> None:
        if isinstance(seen, Tensor) and seen._requires_grad and id(raw) not in self.external \
                and (seen.grad_fn is None or seen.grad_fn not in self.internal):
            self.external[id(raw)] = (raw, seen)

    def after(self, result, raw, seen):
        for r, s in zip(raw, seen, strict=True):
            self.see(r, s)
        for out in result if isinstance(result, tuple) else (result,):
            if isinstance(out, Tensor) and out.grad_fn is not None:
                self.internal.add(out.grad_fn)
        return result

    def absorb(self, node, external) -> None:
        """A nested checkpoint finished: its node is internal here, its outside tensors are seen here."""
        self.internal.add(node)
        for raw, seen in external:
            self.see(raw, seen)


class _Recompute(_Frame):
    """Backward: the segment reads detached stand-ins instead of the outside tensors."""

    def __init__(self, proxies: dict):
        super().__init__()
        self.proxies = proxies

    def substitute(self, args):
        args = super().substitute(args)
        proxies = self.proxies
        return tuple([proxies.get(id(a), a) if isinstance(a, Tensor) else a for a in args])


# ----- the graph node ----------------------------------------------------------------------------
class CheckpointFunction(Function):
    """The node a checkpointed segment's outputs hang off; ``backward`` recomputes and differentiates."""

    _materialize_grads = False

    def name(self) -> str:
        return "CheckpointFunctionBackward"

    @staticmethod
    def backward(ctx, *grads):
        if ctx._saved is None:
            from engine.autograd.function import FREED_MESSAGE

            raise RuntimeError(FREED_MESSAGE)
        if state.enabled:
            raise NotImplementedError("engine.utils.checkpoint: backward with create_graph=True through a "
                                      "checkpointed segment is not supported")
        fn, args, kwargs, versions = ctx._saved
        for t, version in zip(_tensors_in((args, kwargs)), versions, strict=True):
            if t._vc[0] != version:
                raise _modified_error(t._data.shape, t._dtype, t._vc[0], version)
        proxies = {id(raw): seen.detach().requires_grad_(True) for raw, seen in ctx._external}
        with _rng_restored(ctx._rng), enable_grad(), ctx._recompute_context, _Recompute(proxies) as frame:
            outputs = _flatten(fn(*args, **kwargs))
        outputs = list(frame.substitute(tuple(outputs)))  # an input returned as it is: its stand-in
        roots, root_grads = [], []
        for nr, position in enumerate(ctx._positions):
            out = outputs[position] if position < len(outputs) else None
            _check_same(ctx, nr, out, frame)
            if grads[nr] is not None:
                roots.append(out)
                root_grads.append(grads[nr])
        stand_ins = [proxies[id(raw)] for raw, _ in ctx._external]
        if not roots:
            return (None,) * len(stand_ins)
        from engine.autograd.graph import grad

        return grad(roots, stand_ins, root_grads, allow_unused=True)

    def _release_extra(self) -> None:
        self._external = ()


def _check_same(ctx, nr: int, out, frame) -> None:
    if ctx._meta is None:
        if not isinstance(out, Tensor) or not out._requires_grad:
            raise CheckpointError(f"torch.utils.checkpoint: output {nr} of the recomputed segment does not "
                                  "require grad")
        return
    expected = ctx._meta[nr]
    found = None if not isinstance(out, Tensor) else (tuple(out._data.shape), out._dtype, out._device)
    if found != expected or not out._requires_grad:
        trace = (f"\nforward ran: {ctx._ops}\nrecomputation ran: {frame.ops}" if ctx._ops is not None else
                 "\nTip: pass debug=True to see the ops of the forward and of the recomputation.")
        raise CheckpointError("torch.utils.checkpoint: Recomputed values for the following tensors have different "
                              f"metadata than during the forward pass.\noutput {nr}:\nsaved metadata: {expected}\n"
                              f"recomputed metadata: {found}{trace}")


def _tensors_in(tree) -> list:
    found: list = []
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, Tensor):
            found.append(x)
        elif isinstance(x, list | tuple):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
    return found


def _flatten(tree) -> list:
    return _tensors_in(tree) if not isinstance(tree, Tensor) else [tree]


def _rebuild(tree, replace):
    if isinstance(tree, Tensor):
        return replace(tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a namedtuple
        return type(tree)(*[_rebuild(x, replace) for x in tree])
    if isinstance(tree, list | tuple):
        return type(tree)(_rebuild(x, replace) for x in tree)
    if isinstance(tree, dict):
        return {k: _rebuild(v, replace) for k, v in tree.items()}
    return tree


# ----- RNG -----------------------------------------------------------------------------------------
def _rng_states(tensors) -> dict | None:
    devices = {t._device for t in tensors} | {_random.default_generator.device}
    return {d: _random.generator_for(d).get_state() for d in devices}


@contextlib.contextmanager
def _rng_restored(saved):
    if saved is None:
        yield
        return
    current = {d: _random.generator_for(d).get_state() for d in saved}
    for d, s in saved.items():
        _random.generator_for(d).set_state(s)
    try:
        yield
    finally:
        for d, s in current.items():
            _random.generator_for(d).set_state(s)


# ----- public API ----------------------------------------------------------------------------------
def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=noop_context_fn,
               determinism_check: str = "default", debug: bool = False, early_stop: bool = True, **kwargs):
    """Run ``function(*args, **kwargs)`` keeping only its inputs; recompute it during backward.

    ``use_reentrant=False`` (recommended) also gives gradients to parameters and outside tensors the
    segment reads when no input requires grad, accepts keyword arguments and works with
    ``engine.autograd.grad``. ``use_reentrant=True`` (the default, with PyTorch's warning) differentiates
    only through the tensor inputs and accumulates parameter gradients from inside backward.

    Example:
        >>> y = checkpoint(block, x, use_reentrant=False)
        >>> y.sum().backward()     # block runs again here
    """
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint: the use_reentrant parameter should be "
            "passed explicitly. Starting in PyTorch 2.9, calling checkpoint "
            "without use_reentrant will raise an exception. use_reentrant=False is "
            "recommended, but if you need to preserve the current default "
            "behavior, you can pass use_reentrant=True. Refer to docs for more "
            "details on the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if use_reentrant:
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
        check_backward_validity(args)
    elif determinism_check not in _DETERMINISM_CHECKS:
        raise ValueError(f"determinism_check should be one of {list(_DETERMINISM_CHECKS)}, "
                         f"but got {determinism_check}")
    elif debug and context_fn is not noop_context_fn:
        raise ValueError("debug=True is incompatible with non-default context_fn")
    capture = _function._capture
    if capture is not None and not isinstance(capture, _Frame):  # a trace records: it sees every op anyway
        return function(*args, **kwargs)
    if not state.enabled:
        return function(*args, **kwargs)
    tensors = _tensors_in((args, kwargs))
    rng = _rng_states(tensors) if preserve else None
    forward_context, recompute_context = context_fn() if not use_reentrant else noop_context_fn()
    with forward_context:
        if use_reentrant:
            with no_grad(), _Recompute({}) as frame:  # a frame too, so an enclosing checkpoint sees it
                result = function(*args)
            seen = frame.substitute(args)
            external = [(a, s) for a, s in zip(args, seen, strict=True) if isinstance(s, Tensor) and s._requires_grad]
        else:
            with _Discover() as frame:
                result = function(*args, **kwargs)
            outputs = _flatten(result)
            for out, seen in zip(outputs, frame.substitute(tuple(outputs)), strict=True):
                frame.see(out, seen)  # an input returned as it is
            external = list(frame.external.values())
    outputs = _flatten(result)
    positions = [i for i, o in enumerate(outputs) if o._requires_grad or (use_reentrant and external
                                                                         and o._dtype.differentiable)]
    if not external or not positions:
        return result
    node = _node(function, args, kwargs, tensors, external, positions, outputs, rng, recompute_context,
                 reentrant=use_reentrant, check=determinism_check == "default", debug=debug, ops=frame.ops)
    replaced = {}
    for nr, position in enumerate(positions):
        out = outputs[position]
        new = wrap(out._data, out._device)
        new._requires_grad, new.grad_fn, new._output_nr = True, node, nr
        replaced[id(out)] = new
    if isinstance(frame.prev, _Discover):
        frame.prev.absorb(node, external)
    return _rebuild(result, lambda t: replaced.get(id(t), t))


def _node(function, args, kwargs, tensors, external, positions, outputs, rng, recompute_context, *,
          reentrant: bool, check: bool, debug: bool, ops) -> CheckpointFunction:
    node = object.__new__(_ReentrantCheckpoint if reentrant else CheckpointFunction)
    node._next = tuple((t, 0) if t.grad_fn is None else (t.grad_fn, t._output_nr) for _, t in external)
    node.needs_input_grad = (True,) * len(external)
    node._recording = True
    node._saved = (function, args, kwargs, tuple(t._vc[0] for t in tensors))
    node._external = external
    node._positions = positions
    node._n_out = len(positions)
    node._rng = rng
    node._recompute_context = recompute_context
    node._meta = [(tuple(outputs[p]._data.shape), outputs[p]._dtype, outputs[p]._device) for p in positions] \
        if check else None
    node._ops = list(ops) if debug else None
    return node


class _ReentrantCheckpoint(CheckpointFunction):
    """``use_reentrant=True``: recompute on detached inputs and run a nested ``backward`` (PyTorch's original)."""

    @staticmethod
    def backward(ctx, *grads):
        if ctx._saved is None:
            from engine.autograd.function import FREED_MESSAGE

            raise RuntimeError(FREED_MESSAGE)
        if state.enabled:
            raise NotImplementedError("engine.utils.checkpoint: backward with create_graph=True through a "
                                      "checkpointed segment is not supported")
        fn, args, _kwargs, versions = ctx._saved
        for t, version in zip(_tensors_in(args), versions, strict=True):
            if t._vc[0] != version:
                raise _modified_error(t._data.shape, t._dtype, t._vc[0], version)
        detached = detach_variable(tuple(args))
        with _rng_restored(ctx._rng), enable_grad():
            outputs = _flatten(fn(*detached))
        roots, root_grads = [], []
        for nr, position in enumerate(ctx._positions):
            out = outputs[position] if position < len(outputs) else None
            if grads[nr] is not None and isinstance(out, Tensor) and out._requires_grad:
                roots.append(out)
                root_grads.append(grads[nr])
        if not roots:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        from engine.autograd.graph import backward

        backward(roots, root_grads)
        by_id = {id(t): d for t, d in zip(args, detached, strict=True) if isinstance(t, Tensor)}
        return tuple(by_id[id(raw)].grad for raw, _ in ctx._external)


def checkpoint_sequential(functions, segments, input, use_reentrant: bool | None = None, **kwargs):
    """Run a sequence of modules in ``segments`` checkpointed chunks (the last chunk runs normally).

    Example:
        >>> y = checkpoint_sequential(model, 2, x, use_reentrant=False)   # model: nn.Sequential
    """
    if use_reentrant is None:
        warnings.warn(
            "torch.utils.checkpoint.checkpoint_sequential: the use_reentrant "
            "parameter should be passed explicitly. "
            "In version 2.9 we will raise an exception if use_reentrant "
            "is not passed. use_reentrant=False is "
            "recommended, but if you need to preserve the current default "
            "behavior, you can pass use_reentrant=True. Refer to docs for more "
            "details on the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    from engine.nn.modules.container import Sequential

    def run_function(start, end, functions):
        def forward(input):
            for j in range(start, end + 1):
                input = functions[j](input)
            return input

        return forward

    if isinstance(functions, Sequential):
        functions = list(functions.children())
    segment_size = len(functions) // segments
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(run_function(start, end, functions), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run_function(end + 1, len(functions) - 1, functions)(input)
