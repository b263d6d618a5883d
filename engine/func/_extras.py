"""``linearize``, ``functionalize``, ``replace_all_batch_norm_modules_`` and ``debug_unwrap``."""

from __future__ import annotations

import functools

from engine.func._transforms import jvp


def linearize(func, *primals):
    """``(func(*primals), jvp_fn)``; ``jvp_fn(*tangents)`` is ``J @ tangents`` at ``primals``.

    Each ``jvp_fn`` call re-runs ``func`` (forward mode here is the double-vjp trick), with the same values.
    """
    out, _ = jvp(func, primals, tuple(p.new_zeros(p.shape) for p in primals))

    def jvp_fn(*tangents):
        if len(tangents) != len(primals):
            raise RuntimeError(f"linearize: expected {len(primals)} tangents, got {len(tangents)}")
        return jvp(func, primals, tangents)[1]

    return out, jvp_fn


def functionalize(func, *, remove: str = "mutations"):
    """``func`` with the same results: the engine runs eagerly with no aliasing graph to rewrite."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}. "
                           "Valid options are:\n     remove='mutations': all inplace and out= operators will be "
                           "removed from the program, and replaced with their out-of-place equivalents.\n     "
                           "remove='mutations_and_views': In addition to the above, all aliasing operators "
                           "{view} will be replaced with their non-aliasing counterparts, {view}_copy.\n")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapped


def replace_all_batch_norm_modules_(root):
    """Stop every batch norm under ``root`` from tracking running statistics (for ``vmap``), in place."""
    from engine.nn.modules.batchnorm import _BatchNorm

    for module in root.modules():
        if isinstance(module, _BatchNorm):
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
            module.track_running_stats = False
    return root


def debug_unwrap(tensor, *, recurse: bool = True):
    """The tensor itself: the engine's transforms never wrap tensors."""
    return tensor
