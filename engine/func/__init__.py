"""``engine.func`` (``torch.func``): composable function transforms over the engine's autograd.

``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian`` and ``vmap`` nest with
each other; ``functional_call`` and ``stack_module_state`` run modules as functions of their weights
(model ensembling, per-sample gradients).

Example:
    >>> import engine as torch
    >>> from engine.func import grad, vmap
    >>> per_sample = vmap(grad(lambda w, x: (w * x).sum() ** 2), in_dims=(None, 0))
    >>> per_sample(torch.ones(3), torch.randn(8, 3)).shape
    engine.Size([8, 3])
"""

from engine.func._extras import debug_unwrap, functionalize, linearize, replace_all_batch_norm_modules_
from engine.func._module_state import functional_call, stack_module_state
from engine.func._transforms import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp
from engine.func._vmap import vmap

__all__ = ["debug_unwrap", "functional_call", "functionalize", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev",
           "jvp", "linearize", "replace_all_batch_norm_modules_", "stack_module_state", "vjp", "vmap"]
