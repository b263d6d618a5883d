"""``vmap``: map a function over a batch dimension of its inputs.

The function runs once per batch entry on the sliced inputs (``x.select(in_dim, i)``) and the results
are stacked along ``out_dims``. Every engine op therefore works under ``vmap``, including transforms
nested inside it (``vmap(grad(f))`` gives per-sample gradients); the cost is one call per entry.
``chunk_size`` is accepted and checked; ``randomness`` is honoured: ``"different"`` lets each entry draw
its own numbers, ``"same"`` replays the default generators' state for every entry, ``"error"`` raises when
the function draws random numbers.
"""

from __future__ import annotations

import functools

from engine.func._pytree import broadcast_prefix, tree_flatten, tree_unflatten
from engine.tensor import Tensor

_RANDOMNESS = ("error", "different", "same")


def _generators() -> list:
    from engine import random

    return [random.default_generator, *random._cuda_generators.values()]


def _states() -> list:
    return [g.get_state() for g in _generators()]


def _fingerprint() -> list:
    """A cheap summary of every default generator's position, to notice a random draw."""
    return [g._position() for g in _generators()]


def _in_dims_list(in_dims, args) -> list:
    if isinstance(in_dims, int) or in_dims is None:
        return broadcast_prefix(in_dims, args, "in_dims")
    if not isinstance(in_dims, tuple):
        raise ValueError(f"vmap(f, in_dims={in_dims!r}, ...): expected `in_dims` to be int or a (potentially "
                         f"nested) tuple matching the structure of inputs, got: {type(in_dims)}.")
    if len(in_dims) != len(args):
        raise ValueError(f"vmap(f, in_dims={in_dims!r}, ...)(<inputs>): in_dims is not compatible with the "
                         f"structure of `inputs`. in_dims has structure of length {len(in_dims)} but inputs has "
                         f"structure of length {len(args)}.")
    return broadcast_prefix(in_dims, args, f"vmap(f, in_dims={in_dims!r}, ...)(<inputs>): in_dims")


def _batch_size(leaves, dims, in_dims) -> int:
    sizes = []
    for leaf, d in zip(leaves, dims, strict=True):
        if d is None:
            continue
        if not isinstance(d, int):
            raise ValueError(f"vmap(f, in_dims={in_dims!r}, ...)(<inputs>): in_dims must be int or None, got {d!r}")
        if not isinstance(leaf, Tensor):
            raise ValueError(f"vmap(f, in_dims={in_dims!r}, ...)(<inputs>): Got in_dim={d} for an input but the "
                             f"input is of type {type(leaf)}. We cannot vmap over non-Tensor arguments, please use "
                             "None as the respective in_dim")
        if not -leaf.dim() <= d < leaf.dim():
            raise ValueError(f"vmap(f, in_dims={in_dims!r}, ...)(<inputs>): Got in_dim={d} for some input, but that "
                             f"input is a Tensor of dimensionality {leaf.dim()} so expected in_dim to satisfy "
                             f"-{leaf.dim()} <= in_dim < {leaf.dim()}.")
        sizes.append(leaf.shape[d])
    if not sizes:
        raise ValueError(f"vmap(f, in_dims={in_dims!r}, ...)(<inputs>): at least one input must be batched "
                         "(have a non-None in_dim)")
    if len(set(sizes)) != 1:
        raise ValueError(f"vmap(f, in_dims={in_dims!r}, ...)(<inputs>): Expected all tensors to have the same size "
                         f"in the mapped dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0]


def _stack_outputs(results, out_dims):
    from engine.ops.shape import stack

    flats = [tree_flatten(r) for r in results]
    spec = flats[0][1]
    if any(s != spec for _, s in flats):
        raise ValueError("vmap: the function returned outputs of different structure for different batch entries")
    dims = broadcast_prefix(out_dims, tree_unflatten(flats[0][0], spec), "out_dims")
    out = []
    for j, d in enumerate(dims):
        column = [leaves[j] for leaves, _ in flats]
        if d is None:
            out.append(column[0])
            continue
        if not all(isinstance(c, Tensor) for c in column):
            raise ValueError(f"vmap: Expected the function to return only Tensors (or an out_dim of None), got "
                             f"{type(column[0])}")
        if not -column[0].dim() - 1 <= d <= column[0].dim():
            raise ValueError(f"vmap: out_dim={d} is out of range for outputs of dimensionality {column[0].dim()}")
        out.append(stack(column, dim=d))
    return tree_unflatten(out, spec)


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """Vectorize ``func`` over dimension ``in_dims`` of its inputs (as ``torch.func.vmap``)."""
    if randomness not in _RANDOMNESS:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. "
                           f"Got {randomness}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        leaves, spec = tree_flatten(args)
        dims = _in_dims_list(in_dims, args)
        size = _batch_size(leaves, dims, in_dims)
        dims = [None if d is None else d % leaf.dim() for leaf, d in zip(leaves, dims, strict=True)]
        start = _states()
        results = []
        for i in range(max(size, 1)):
            if randomness == "same":
                for g, s in zip(_generators(), start, strict=False):
                    g.set_state(s)
            before = _fingerprint()
            sliced = [leaf if d is None else (leaf.select(d, i) if size else leaf.new_zeros(
                (*leaf.shape[:d], 1, *leaf.shape[d + 1:])).select(d, 0)) for leaf, d in zip(leaves, dims, strict=True)]
            results.append(func(*tree_unflatten(sliced, spec), **kwargs))
            if randomness == "error" and before != _fingerprint():
                raise RuntimeError("vmap: called random operation while in randomness error mode. Please either "
                                   "use the 'same' or 'different' randomness flags on vmap or perform the "
                                   "randomness operation out of vmap")
        out = _stack_outputs(results, out_dims)
        if size == 0:  # the function ran once on zeros to learn the output shapes
            out_leaves, out_spec = tree_flatten(out)
            out_d = broadcast_prefix(out_dims, out, "out_dims")
            out = tree_unflatten([o if d is None else o.narrow(d, 0, 0) for o, d in zip(out_leaves, out_d,
                                                                                        strict=True)], out_spec)
        return out

    return wrapped
