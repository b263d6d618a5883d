"""The functions captured graphs call besides the op registry's ops.

Opaque nodes run stateful Python at replay (a backward pass, an optimizer step, gradient delivery);
``forward_with_ctx`` / ``backward_with_ctx`` run a built-in op's forward keeping its ctx and, in the
traced backward, its own array backward formula; ``dropout_mask`` and ``update_running_stats`` are
the impure halves of the dropout and batch-norm decompositions.
"""

from __future__ import annotations

from engine.autograd.grad_mode import state as grad_state
from engine.fx.graph import Node
from engine.tensor import Tensor


def _opaque(fn):
    fn._dynamo_opaque = True
    return fn


@_opaque
def run_backward(tensors, grad_tensors, retain_graph, create_graph, inputs):
    """``engine.autograd.backward`` as a graph node (the replayed outputs carry autograd history)."""
    from engine.autograd import graph

    graph.backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


@_opaque
def call_method(obj, name: str, args: tuple, kwargs: dict):
    """A stateful method (``optimizer.step``, ``zero_grad``, ``scheduler.step``) as a graph node."""
    return getattr(type(obj), name)(obj, *args, **kwargs)


@_opaque
def read_grad(leaf: Tensor):
    """The live ``.grad`` of a leaf (it is a new tensor after every backward)."""
    return leaf.grad


@_opaque
def set_grad(leaf: Tensor, grad) -> None:
    """``leaf.grad = grad`` in the captured code (``x.grad = None`` before a backward, as a zero_grad)."""
    leaf.grad = grad


@_opaque
def array_of(t: Tensor):
    """The array of a tensor (a backward formula read it directly)."""
    return t._data


@_opaque
def deliver_grads(leaves: tuple, grads: tuple):
    """Accumulate a traced backward's gradients into the leaves' ``.grad``, as the autograd engine does."""
    from engine.tensor import _make

    for leaf, g in zip(leaves, grads, strict=True):
        if g is None:
            continue
        array = g._data
        if leaf.grad is None:
            # NOTE: always a copy: a compiled program may reuse the buffer it computed the gradient in
            leaf.grad = _make(array.astype(leaf._dtype.np, copy=True), leaf._dtype, leaf._device)
        else:
            leaf.grad = _make((leaf.grad._data + array).astype(leaf._dtype.np, copy=False), leaf._dtype,
                              leaf._device)


def forward_with_ctx(cls, needs_input_grad: tuple, *args):
    """Run a built-in op's forward keeping its ctx, for ``backward_with_ctx`` (ops whose backward formula
    is not made of tensor ops: convolution, pooling, normalization)."""
    from engine.autograd.function import _device_of, mark_view
    from engine.tensor import wrap

    ctx = object.__new__(cls)
    ctx._recording = True
    ctx.needs_input_grad = needs_input_grad
    data = cls.forward(ctx, *args)
    out = wrap(data, _device_of(args))
    if cls._view:
        mark_view(out, args[0])
    if cls._saves_output:
        ctx._output, ctx._output_vc = out._data, out._vc
        ctx._output_dtype, ctx._output_device = out._dtype, out._device
    return out, ctx


def apply_pair(cls, needs_input_grad: tuple, *args):
    """``forward_with_ctx`` where autograd runs at replay: the op applied as in eager (no ctx needed)."""
    return cls.apply(*args), None


def backward_with_ctx(cls, ctx, g: Tensor) -> tuple:
    """The op's own (array) backward formula on the ctx ``forward_with_ctx`` kept."""
    from engine.tensor import wrap

    previous, previous_arrays = grad_state.enabled, grad_state.arrays
    grad_state.enabled = False
    try:
        if cls._array_backward:
            grad_state.arrays = True
            grads = cls.backward(ctx, g._data)
        else:
            grads = cls.backward(ctx, g)
    finally:
        grad_state.enabled, grad_state.arrays = previous, previous_arrays
    grads = grads if isinstance(grads, tuple) else (grads,)
    return tuple(wrap(r, g._device) if r is not None and not isinstance(r, Tensor) else r for r in grads)


def dropout_mask(input: Tensor, p: float) -> Tensor:
    from engine.ops.dropout import _keep_mask
    from engine.tensor import wrap

    return wrap(_keep_mask(input, p, input._data.shape), input._device)


dropout_mask._dynamo_opaque = True  # type: ignore[attr-defined] # random: never dropped or merged


def is_opaque(node: Node) -> bool:
    return node.op == "call_function" and getattr(node.target, "_dynamo_opaque", False)



def update_running_stats(input: Tensor, running_mean, running_var, momentum: float) -> None:
    """batch_norm's in-place update of the running statistics from a batch (as eager batch_norm does)."""
    from engine.autograd.grad_mode import no_grad
    from engine.ops.normalization import _blend, moments

    data = input._data
    axes = (0, *range(2, data.ndim))
    count = data.size // data.shape[1]
    mean, var = moments(data, axes)
    with no_grad():
        if running_mean is not None:
            _blend(running_mean, mean.reshape(-1), momentum)
        if running_var is not None:
            _blend(running_var, var.reshape(-1) * (count / (count - 1)), momentum)


update_running_stats._dynamo_opaque = True  # type: ignore[attr-defined]


@_opaque
def set_modes(grad_enabled, autocast: tuple) -> None:
    """Grad mode (None: leave it) and the autocast regions, as the captured code had them from here on."""
    from engine.amp import autocast_state

    if grad_enabled is not None:
        grad_state.enabled = grad_enabled
    wanted = {device: (dtype, cache) for device, dtype, cache in autocast}
    for device in list(autocast_state._dtypes):
        if device not in wanted:
            autocast_state.set_state(device, None)
    for device, (dtype, cache) in wanted.items():
        autocast_state.set_state(device, dtype, cache)


def current_modes() -> tuple:
    """(grad mode, autocast regions) now, in the form ``set_modes`` takes."""
    from engine.amp import autocast_state

    if not autocast_state.active:
        return grad_state.enabled, ()
    return grad_state.enabled, tuple(sorted((device, dtype, autocast_state._cache_enabled.get(device, True))
                                            for device, dtype in autocast_state._dtypes.items()))


def keeping_modes(runner):
    """``runner`` restoring grad mode and autocast afterwards (its graph switches them)."""

    def run(*inputs):
        grad, autocast = current_modes()
        try:
            return runner(*inputs)
        finally:
            set_modes(grad, autocast)

    run.__wrapped__ = runner  # type: ignore[attr-defined]
    return run
