"""Reverse-mode traversal: ``backward`` and ``grad`` over the recorded graph.

The traversal is iterative (explicit stacks, no recursion), so graphs of any depth work.
"""

from __future__ import annotations

import numpy as np

from engine.autograd import anomaly_mode as _anomaly
from engine.autograd import post_accumulate as _post_accumulate
from engine.autograd.grad_mode import state
from engine.backend import fp_ignore, fp_restore
from engine.device import device_of_array
from engine.tensor import Tensor, _make, wrap


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the graph's leaves."""
    tensors = _as_tuple(tensors)
    roots, grads = _prepare_roots(tensors, grad_tensors, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    only = None
    if inputs is not None:
        inputs = _as_tuple(inputs)
        if not inputs:
            raise RuntimeError("'inputs' argument to backward() cannot be empty.")
        only = {id(t) for t in inputs}
        for t in inputs:
            if t.grad_fn is not None:
                raise RuntimeError("backward(inputs=...) supports leaf tensors only in this engine")
    _execute(roots, grads, retain_graph, create_graph, capture=None, only=only)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Return d(outputs)/d(inputs) without touching any ``.grad``.

    Example:
        >>> (dx,) = engine.autograd.grad(y, x, create_graph=True)   # dx can be differentiated again
    """
    if is_grads_batched:
        raise NotImplementedError("is_grads_batched is not supported")
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    for t in inputs:
        if not t._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    roots, grads = _prepare_roots(outputs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    capture = {}
    for t in inputs:
        capture[t if t.grad_fn is None else (t.grad_fn, t._output_nr)] = None
    captured = _execute(roots, grads, retain_graph, create_graph, capture=capture, only=None)
    result = []
    for t in inputs:
        g = captured[t if t.grad_fn is None else (t.grad_fn, t._output_nr)]
        if g is None:
            if materialize_grads:
                g = _make(t._device.xp.zeros(t._data.shape, t._dtype.np), t._dtype, t._device)
            elif not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
        elif not create_graph and g._requires_grad:
            g = g.detach()
        result.append(g)
    return tuple(result)


def _as_tuple(x) -> tuple:
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _prepare_roots(tensors, grad_tensors, caller: str):
    from engine.creation import as_tensor, ones_like

    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    else:
        grad_tensors = _as_tuple(grad_tensors) if isinstance(grad_tensors, Tensor | list | tuple) else (grad_tensors,)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"got {len(grad_tensors)} gradients for {len(tensors)} tensors")
    roots, grads = [], []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors, strict=True)):
        if not t._requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if t._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = ones_like(t)
        else:
            g = as_tensor(g, dtype=t._dtype, device=t._device)
            if tuple(g._data.shape) != tuple(t._data.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {list(g._data.shape)} "
                                   f"and output[{i}] has a shape of {list(t._data.shape)}.")
        roots.append((t, 0) if t.grad_fn is None else (t.grad_fn, t._output_nr))
        grads.append(g)
    return roots, grads


def _count_dependencies(root_targets) -> dict:
    """How many graph edges point at each node or leaf reachable from the roots."""
    deps: dict = {}
    roots = set(root_targets)
    stack = [t for t in roots if not isinstance(t, Tensor)]
    while stack:
        node = stack.pop()
        for edge in node._next:
            if edge is None:
                continue
            target = edge[0]
            if target in deps:
                deps[target] += 1
            else:
                deps[target] = 1
                if target not in roots and not isinstance(target, Tensor):
                    stack.append(target)
    return deps


def _execute(roots, root_grads, retain_graph: bool, create_graph: bool, capture, only):
    # NOTE: without create_graph, gradients flow as raw arrays and built-in ops run their backward
    # on arrays (see engine.ops.grad_math); tensors are only built for hooks, user Functions and leaves.
    fast = not create_graph
    buffers: dict = {}
    for (target, nr), g in zip(roots, root_grads, strict=True):
        _add_to_buffer(buffers, target, nr, g._data if fast else g)
    deps = _count_dependencies([target for target, _ in roots])
    ready = [t for t in dict.fromkeys(target for target, _ in roots) if t not in deps]
    # NOTE: arrays already handed to someone (root grads, leaf grads) are copied before
    # becoming another leaf's .grad, so in-place updates of one .grad never alias another.
    handed = {id(g._data) for g in root_grads}
    previous = state.enabled
    state.enabled = create_graph
    token = fp_ignore() if fast else None
    outer = len(_queued_callbacks)
    try:
        while ready:
            node = ready.pop()
            grads = buffers.pop(node, None)
            if isinstance(node, Tensor):
                if grads is not None:
                    _deliver_to_leaf(node, grads, create_graph, capture, only, handed)
                continue
            if grads is None:  # no gradient reached this node: release its inputs' dependencies
                for edge in node._next:
                    if edge is not None:
                        target = edge[0]
                        deps[target] -= 1
                        if deps[target] == 0:
                            ready.append(target)
                continue
            grads = [grads] if node._n_out == 1 else _materialize(node, grads, fast)
            if node._pre_hooks is not None or node._retained is not None or capture:
                _visit_outputs(node, grads, fast, create_graph, capture, handed)
            cls = type(node)
            if fast and cls._array_backward:
                state.arrays = True
                try:
                    results = cls.backward(node, *grads)
                finally:
                    state.arrays = False
            elif fast:
                results = cls.backward(node, *[_as_tensor(g) for g in grads])
                results = tuple(r._data if isinstance(r, Tensor) else r for r in
                                (results if results.__class__ is tuple else (results,)))
            else:
                results = cls.backward(node, *grads)
            if results.__class__ is not tuple:
                results = (results,)
            if _anomaly._state.enabled:
                _anomaly.check_gradients(node, results)
            edges = node._next
            if len(results) != len(edges):
                raise RuntimeError(f"function {node.name()} returned an incorrect number of gradients "
                                   f"(expected {len(edges)}, got {len(results)})")
            if not retain_graph:
                node._release()
            for edge, g in zip(edges, results):  # noqa: B905 - lengths checked above
                if edge is None:
                    continue
                target, nr = edge
                if g is not None:
                    if target not in buffers and (isinstance(target, Tensor) or target._n_out == 1):
                        buffers[target] = g
                    else:
                        _add_to_buffer(buffers, target, nr, g)
                d = deps[target] - 1
                deps[target] = d
                if d == 0:
                    ready.append(target)
        while len(_queued_callbacks) > outer:
            _queued_callbacks.pop(outer)()
    finally:
        del _queued_callbacks[outer:]  # NOTE: a backward run inside a hook keeps the outer pass's callbacks
        state.enabled = previous
        if token is not None:
            fp_restore(token)
    return capture


_queued_callbacks: list = []


def queue_callback(callback) -> None:
    """Run ``callback()`` once the backward pass now running has delivered every gradient (DDP uses it)."""
    _queued_callbacks.append(callback)


def _as_tensor(g):
    """A gradient array as a tensor (for hooks, user Functions and leaves)."""
    if g is None or isinstance(g, Tensor):
        return g
    if isinstance(g, np.generic):
        g = np.asarray(g)
    return wrap(g, device_of_array(g))


def _visit_outputs(node, grads: list, fast: bool, create_graph: bool, capture, handed: set) -> None:
    """Run tensor hooks and retain_grad on a node's output gradients, and capture them for grad()."""
    if fast:
        tensors = [_as_tensor(g) for g in grads]
    else:
        tensors = grads
    if node._pre_hooks is not None:
        _run_pre_hooks(node, tensors)
    if node._retained is not None:
        _retain(node, tensors, create_graph, handed)
    if capture:
        for nr, g in enumerate(tensors):
            if (node, nr) in capture:
                capture[node, nr] = g
    if fast:
        grads[:] = [None if t is None else t._data for t in tensors]
    else:
        grads[:] = tensors


def _add_to_buffer(buffers: dict, target, nr: int, g) -> None:
    if isinstance(target, Tensor) or target._n_out == 1:
        old = buffers.get(target)
        buffers[target] = g if old is None else old + g
        return
    slots = buffers.get(target)
    if slots is None:
        slots = buffers[target] = [None] * target._n_out
    slots[nr] = g if slots[nr] is None else slots[nr] + g


def _materialize(node, grads: list, fast: bool) -> list:
    grads = list(grads)
    if node._materialize_grads:
        for i, g in enumerate(grads):
            meta = node._out_meta[i] if node._out_meta else None
            if g is None and meta is not None:
                shape, dtype, device = meta
                zeros = device.xp.zeros(shape, dtype.np)
                grads[i] = zeros if fast else _make(zeros, dtype, device)
    return grads


def _run_pre_hooks(node, grads: list) -> None:
    for nr, hooks in node._pre_hooks.items():
        for hook in list(hooks):
            if grads[nr] is None:
                continue
            replaced = hook(grads[nr])
            if replaced is not None:
                grads[nr] = replaced


def _retain(node, grads: list, create_graph: bool, handed: set) -> None:
    for nr, ref in node._retained.items():
        t = ref()
        g = grads[nr]
        if t is None or g is None:
            continue
        g = g if create_graph else g.detach()
        t.grad = g if t.grad is None else t.grad + g
        handed.add(id(g._data))


def _deliver_to_leaf(leaf: Tensor, g, create_graph: bool, capture, only, handed: set) -> None:
    if leaf._hooks:
        g = _as_tensor(g)
        for hook in list(leaf._hooks):
            replaced = hook(g)
            if replaced is not None:
                g = replaced
    if capture is not None:
        if leaf in capture:
            capture[leaf] = _as_tensor(g)
        return
    if only is not None and id(leaf) not in only:
        return
    if create_graph:
        if g._dtype.is_complex and not leaf._dtype.is_complex:
            g = g.real  # NOTE: a real leaf that fed a complex op gets the real part, as in PyTorch
        if g._dtype is not leaf._dtype:
            g = g.to(leaf._dtype)
        _check_leaf_shape(leaf, g._data.shape)
        leaf.grad = g if leaf.grad is None else leaf.grad + g
        if _post_accumulate._HOOKS:
            _post_accumulate.run(leaf)
        return
    array = g._data if isinstance(g, Tensor) else g
    if isinstance(array, np.generic):
        array = np.asarray(array)
    _check_leaf_shape(leaf, array.shape)
    if array.dtype.kind == "c" and not leaf._dtype.is_complex:
        array = array.real
    if array.dtype != leaf._dtype.np:
        array = array.astype(leaf._dtype.np)
    if leaf.grad is None:
        if array.base is not None or id(array) in handed or not array.flags.writeable:
            array = array.copy()
        leaf.grad = _make(array, leaf._dtype, leaf._device)
        handed.add(id(array))
    else:
        leaf.grad = _make(leaf.grad._data + array, leaf._dtype, leaf._device)
    if _post_accumulate._HOOKS:
        _post_accumulate.run(leaf)


def _check_leaf_shape(leaf: Tensor, shape) -> None:
    if tuple(shape) != tuple(leaf._data.shape):
        raise RuntimeError(f"invalid gradient for a leaf: got shape {list(shape)} but expected "
                           f"{list(leaf._data.shape)}")
