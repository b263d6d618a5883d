"""``torch.autograd.functional``: ``vjp``, ``jvp``, ``jacobian``, ``hessian``, ``vhp``, ``hvp``.

Built on ``engine.func`` (one place for the transforms); this module only adapts PyTorch's older
calling convention: ``inputs`` as a Tensor or a tuple of Tensors, results shaped like them, and results
detached unless ``create_graph=True``.
"""

from __future__ import annotations

from engine.tensor import Tensor

_STRATEGIES = ("forward-mode", "reverse-mode")


def _as_tuple(x, what: str):
    if isinstance(x, Tensor):
        return False, (x,)
    if isinstance(x, (tuple, list)) and all(isinstance(t, Tensor) for t in x):
        return True, tuple(x)
    raise TypeError(f"The {what} given to autograd.functional must be either a Tensor or a tuple of Tensors but "
                    f"the given type is {type(x)}")


def _finish(tree, create_graph: bool):
    if isinstance(tree, Tensor):
        return tree if create_graph else tree.detach()
    return type(tree)(_finish(t, create_graph) for t in tree)


def _grad_context(create_graph: bool):
    from engine.autograd.grad_mode import enable_grad, no_grad

    return enable_grad() if create_graph else no_grad()


def _scalar_v(outputs, fn_name: str):
    if not all(o.numel() == 1 for o in outputs):
        raise RuntimeError(f"The vector v can only be None if the user-provided function returns a single Tensor "
                           f"with a single element ({fn_name}).")
    return tuple(o.new_ones(o.shape) for o in outputs)


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T J)``, the vector-Jacobian product."""
    from engine import func as F

    is_tuple, inputs = _as_tuple(inputs, "inputs")
    with _grad_context(create_graph):
        out, vjp_fn = F.vjp(lambda *xs: func(*xs), *inputs)
        out_tuple, outs = _as_tuple(out, "outputs of the user-provided function")
        if v is None:
            vs = _scalar_v(outs, "vjp")
        else:
            vs = _as_tuple(v, "v")[1]
        grads = vjp_fn(vs if out_tuple else vs[0])
    return _finish(out, create_graph), _finish(grads if is_tuple else grads[0], create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)``, the Jacobian-vector product (double-vjp trick)."""
    from engine import func as F

    _, inputs = _as_tuple(inputs, "inputs")
    if v is None:
        vs = _scalar_v(inputs, "jvp")
    else:
        vs = _as_tuple(v, "v")[1]
    with _grad_context(create_graph):
        out, tangent = F.jvp(lambda *xs: func(*xs), inputs, vs)
    return _finish(out, create_graph), _finish(tangent, create_graph)


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: ``J[i][j]`` has shape ``out_i.shape + in_j.shape``."""
    from engine import func as F

    if strategy not in _STRATEGIES:
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                         'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                         'Otherwise, prefer to use "reverse-mode".')
    is_tuple, inputs = _as_tuple(inputs, "inputs")
    with _grad_context(create_graph):
        jac = F.jacrev(lambda *xs: func(*xs), argnums=tuple(range(len(inputs))))(*inputs)
    if isinstance(jac, tuple) and jac and isinstance(jac[0], tuple):  # several outputs
        jac = tuple(j if is_tuple else j[0] for j in jac)
    elif not is_tuple:
        jac = jac[0]
    return _finish(jac, create_graph)


def hessian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar ``func``: ``H[i][j]`` has shape ``in_i.shape + in_j.shape``."""
    from engine import func as F

    if outer_jacobian_strategy not in _STRATEGIES:
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    is_tuple, inputs = _as_tuple(inputs, "inputs")

    def scalar(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single "
                               "element")
        return out.reshape(())

    with _grad_context(create_graph):
        h = F.hessian(scalar, argnums=tuple(range(len(inputs))))(*inputs)
    return _finish(h if is_tuple else h[0][0], create_graph)


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T H)``, the vector-Hessian product of a scalar ``func``."""
    from engine import func as F

    is_tuple, inputs = _as_tuple(inputs, "inputs")
    if v is None:
        vs = _scalar_v(inputs, "vhp")
    else:
        vs = _as_tuple(v, "v")[1]
    with _grad_context(create_graph):
        out = func(*inputs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The function given in vhp should return a Tensor with a single element")
        _, vjp_fn = F.vjp(F.grad(lambda *xs: func(*xs).reshape(()), argnums=tuple(range(len(inputs)))), *inputs)
        prods = vjp_fn(vs)
    return _finish(out, create_graph), _finish(prods if is_tuple else prods[0], create_graph)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), H v)``; the Hessian of a twice-differentiable scalar is symmetric, so this is ``vhp``."""
    return vhp(func, inputs, v, create_graph, strict)
