"""``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd`` and ``hessian`` over the tape autograd.

Each transform runs the function with its differentiated inputs re-entered into the graph (a fresh leaf,
or a view when an outer transform already tracks the input), then asks ``autograd.grad``. When an outer
transform tracks an input the inner gradients are built with ``create_graph=True``, so transforms nest
(``vmap(grad(f))``, ``jacfwd(jacrev(f))``). Forward mode is derived from reverse mode: ``jvp`` uses the
double-vjp trick (the vjp is linear in its cotangent ``u``; differentiating it with respect to ``u`` gives
``J @ t``) and ``jacfwd`` computes the same Jacobian as ``jacrev``.
"""

from __future__ import annotations

import functools

from engine.autograd.grad_mode import enable_grad, is_grad_enabled
from engine.autograd.graph import grad as _autograd_grad
from engine.func._pytree import tensor_leaves, tree_flatten, tree_map, tree_unflatten
from engine.tensor import Tensor


def _track(x):
    """``x`` as a differentiable input: a view keeps an outer transform's graph, else a fresh leaf."""
    if not isinstance(x, Tensor):
        return x
    if not x.is_floating_point() and not x.is_complex():
        raise RuntimeError(f"only Tensors of floating point dtype can require gradients, got {x.dtype}")
    return x.view_as(x) if x.requires_grad else x.detach().requires_grad_()


def _nested(args) -> bool:
    return is_grad_enabled() and any(t.requires_grad for t in tensor_leaves(args))


def _argnums_tuple(argnums, n_args: int, name: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or not all(isinstance(a, int) for a in nums):
        raise RuntimeError(f"{name}: argnums must be int or Tuple[int, ...], got: {argnums!r}")
    out = []
    for a in nums:
        if not -n_args <= a < n_args:
            raise RuntimeError(f"{name}: Got argnums={a}, but only {n_args} positional inputs")
        out.append(a % n_args)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{name}: argnums must be unique, got {argnums!r}")
    return tuple(out)


def _prepare(args, argnums, name: str):
    """(args with the differentiated ones tracked, the tracked trees in argnums order)."""
    nums = _argnums_tuple(argnums, len(args), name)
    args = list(args)
    tracked = []
    for a in nums:
        args[a] = tree_map(_track, args[a])
        if not tensor_leaves(args[a]):
            raise RuntimeError(f"{name}: expected argnums={a} to be a Tensor (or a tree of Tensors), got {args[a]!r}")
        tracked.append(args[a])
    return args, tracked


def _split_aux(out, has_aux: bool, name: str):
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise RuntimeError(f"{name}(f, ...): output of function f should be a tuple: (output, aux) "
                           "if has_aux is True")
    return out[0], out[1]


def _grads(outputs, inputs, grad_outputs, create_graph: bool):
    """d(outputs)/d(inputs) with zeros for unused inputs; the graph is kept for further calls."""
    live = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not live:
        return [x.new_zeros(x.shape) for x in inputs]
    got = _autograd_grad([o for o, _ in live], inputs, grad_outputs=[g for _, g in live], retain_graph=True,
                         create_graph=create_graph, allow_unused=True)
    return [x.new_zeros(x.shape) if g is None else g for x, g in zip(inputs, got, strict=True)]


def _release(tree, keep: bool):
    return tree if keep else tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, tree)


def _pack(trees, argnums):
    return trees[0] if isinstance(argnums, int) else tuple(trees)


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """``func``'s gradient with respect to ``args[argnums]`` and its value (as ``torch.func.grad_and_value``)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nested = _nested(args)
        with enable_grad():
            args, tracked = _prepare(args, argnums, "grad_and_value")
            out, aux = _split_aux(func(*args, **kwargs), has_aux, "grad_and_value")
            if not isinstance(out, Tensor):
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got {type(out)}")
            if out.dim() != 0:
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got "
                                   f"tensor with {out.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs "
                                   "instead?")
            flat, specs = zip(*[tree_flatten(t) for t in tracked], strict=True)
            sizes = [len(f) for f in flat]
            leaves = [x for f in flat for x in f]
            tensors = [x for x in leaves if isinstance(x, Tensor)]
            got = iter(_grads([out], tensors, [out.new_ones(())], nested))
            all_grads = [next(got) if isinstance(x, Tensor) else x for x in leaves]
        trees, start = [], 0
        for size, spec in zip(sizes, specs, strict=True):
            trees.append(tree_unflatten(all_grads[start:start + size], spec))
            start += size
        grads = _pack(trees, argnums)
        value = _release(out, nested)
        if has_aux:
            return grads, (value, _release(aux, nested))
        return grads, value

    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """The gradient of a scalar ``func`` with respect to ``args[argnums]`` (as ``torch.func.grad``)."""
    inner = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        grads, value = inner(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return wrapper


def vjp(func, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)``; ``vjp_fn(cotangents)`` is a tuple with one gradient per primal."""
    nested = _nested(primals)
    with enable_grad():
        args, tracked = _prepare(primals, tuple(range(len(primals))), "vjp")
        out, aux = _split_aux(func(*args), has_aux, "vjp")
    out_leaves, out_spec = tree_flatten(out)
    if not all(isinstance(o, Tensor) for o in out_leaves):
        raise RuntimeError("vjp(f, *primals): Expected f to be a function that has only Tensors as outputs")
    in_flat = [tree_flatten(t) for t in tracked]

    def vjp_fn(cotangents):
        cot_leaves, cot_spec = tree_flatten(cotangents)
        if cot_spec != out_spec and not (len(out_leaves) == 1 and len(cot_leaves) == 1):
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree structure of "
                               "outputs to the function")
        for o, c in zip(out_leaves, cot_leaves, strict=True):
            if tuple(o.shape) != tuple(c.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output has a shape of {tuple(c.shape)} and output "
                                   f"has a shape of {tuple(o.shape)}.")
        create = is_grad_enabled() and (nested or any(c.requires_grad for c in cot_leaves))
        inputs = [x for leaves, _ in in_flat for x in leaves]
        got = iter(_grads(out_leaves, inputs, cot_leaves, create))
        return tuple(tree_unflatten([next(got) for _ in leaves], spec) for leaves, spec in in_flat)

    value = _release(out, nested)
    if has_aux:
        return value, vjp_fn, _release(aux, nested)
    return value, vjp_fn


def jvp(func, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J @ tangents)`` by the double-vjp trick (as ``torch.func.jvp``)."""
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to be tuples")
    p_leaves, p_spec = tree_flatten(primals)
    t_leaves, t_spec = tree_flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the same python "
                           "structure")
    for p, t in zip(p_leaves, t_leaves, strict=True):
        if tuple(p.shape) != tuple(t.shape):
            raise RuntimeError(f"jvp(f, primals, tangents): Expected primals and tangents to have the same shape, "
                               f"got {tuple(p.shape)} and {tuple(t.shape)}")
    nested = _nested(primals) or _nested(tangents)
    with enable_grad():
        args, tracked = _prepare(primals, tuple(range(len(primals))), "jvp")
        out, aux = _split_aux(func(*args), has_aux, "jvp")
        out_leaves, out_spec = tree_flatten(out)
        if not all(isinstance(o, Tensor) for o in out_leaves):
            raise RuntimeError("jvp(f, primals, tangents): Expected f to be a function that has only Tensors as "
                               "outputs")
        inputs = [x for t in tracked for x in tree_flatten(t)[0]]
        us = [o.new_zeros(o.shape).requires_grad_() for o in out_leaves]
        vjps = _grads(out_leaves, inputs, us, True)  # J^T u, linear in u
        pairs = [(v, t) for v, t in zip(vjps, t_leaves, strict=True) if v.requires_grad]
        if pairs:
            got = _autograd_grad([v for v, _ in pairs], us, grad_outputs=[t for _, t in pairs],
                                 create_graph=nested, allow_unused=True)
        else:
            got = [None] * len(us)
        jvps = [o.new_zeros(o.shape) if g is None else g for o, g in zip(out_leaves, got, strict=True)]
    value = _release(out, nested)
    tangent_out = _release(tree_unflatten(jvps, out_spec), nested)
    if has_aux:
        return value, tangent_out, _release(aux, nested)
    return value, tangent_out


def _jacobian(func, argnums, has_aux: bool, name: str):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        nested = _nested(args)
        with enable_grad():
            args, tracked = _prepare(args, argnums, name)
            out, aux = _split_aux(func(*args, **kwargs), has_aux, name)
            out_leaves, out_spec = tree_flatten(out)
            if not all(isinstance(o, Tensor) for o in out_leaves):
                raise RuntimeError(f"{name}(f, ...)(*args): Expected f to return only Tensors")
            in_flat = [tree_flatten(t) for t in tracked]
            inputs = [x for leaves, _ in in_flat for x in leaves]
            jac_leaves = []
            for o in out_leaves:
                rows = []  # one backward per output element: d o[k] / d inputs
                flat_o = o.reshape(-1)
                for k in range(flat_o.shape[0]):
                    rows.append(_grads([flat_o[k]], inputs, [o.new_ones(())], nested))
                per_input = []
                for j, x in enumerate(inputs):
                    if rows:
                        from engine.ops.shape import stack

                        jac = stack([r[j] for r in rows]).reshape(tuple(o.shape) + tuple(x.shape))
                    else:
                        jac = x.new_zeros(tuple(o.shape) + tuple(x.shape))
                    per_input.append(_release(jac, nested))
                it = iter(per_input)
                trees = [tree_unflatten([next(it) for _ in leaves], spec) for leaves, spec in in_flat]
                jac_leaves.append(_pack(trees, argnums))
        jac = tree_unflatten(jac_leaves, out_spec)
        if has_aux:
            return jac, _release(aux, nested)
        return jac

    return wrapper


def jacrev(func, argnums=0, *, has_aux: bool = False, chunk_size=None, _preallocate_and_copy: bool = False):
    """The Jacobian of ``func`` by reverse mode, one vjp per output element (as ``torch.func.jacrev``).

    ``chunk_size`` is accepted (and checked); the rows are always computed one at a time.
    """
    _check_chunk_size(chunk_size)
    return _jacobian(func, argnums, has_aux, "jacrev")


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian of ``func`` (as ``torch.func.jacfwd``); computed here by reverse mode, same values."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. "
                           f"Got {randomness}")
    return _jacobian(func, argnums, has_aux, "jacfwd")


def hessian(func, argnums=0):
    """The Hessian of a scalar ``func``: ``jacfwd(jacrev(func, argnums), argnums)``."""
    return jacfwd(jacrev(func, argnums), argnums)


def _check_chunk_size(chunk_size) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
