"""A minimal pytree for ``engine.func``: tensors and plain values nested in tuples, lists and dicts."""

from __future__ import annotations

from typing import Any

from engine.tensor import Tensor


def tree_flatten(tree) -> tuple[list, Any]:
    """The leaves of ``tree`` in order and a spec that rebuilds it (see ``tree_unflatten``)."""
    if isinstance(tree, (tuple, list)):
        leaves: list = []
        specs = []
        for item in tree:
            sub, spec = tree_flatten(item)
            leaves += sub
            specs.append(spec)
        return leaves, (type(tree), None, specs)
    if isinstance(tree, dict):
        leaves = []
        specs = []
        for key in tree:
            sub, spec = tree_flatten(tree[key])
            leaves += sub
            specs.append(spec)
        return leaves, (dict, list(tree), specs)
    return [tree], None


def tree_unflatten(leaves, spec):
    it = iter(leaves)
    out = _build(it, spec)
    return out


def _build(it, spec):
    if spec is None:
        return next(it)
    kind, keys, specs = spec
    items = [_build(it, s) for s in specs]
    if kind is dict:
        return dict(zip(keys, items, strict=True))
    if kind is list:
        return items
    if kind is tuple:
        return tuple(items)
    return kind(*items)  # namedtuple


def tree_map(fn, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(leaf) for leaf in leaves], spec)


def broadcast_prefix(prefix, tree, what: str) -> list:
    """Expand ``prefix`` (a leaf, or a tree matching the top of ``tree``) to one value per leaf of ``tree``."""
    if not isinstance(prefix, (tuple, list, dict)):
        return [prefix] * len(tree_flatten(tree)[0])
    if isinstance(prefix, dict) != isinstance(tree, dict) or not isinstance(tree, (tuple, list, dict)) \
            or len(prefix) != len(tree):
        raise ValueError(f"{what} is not compatible with the structure of the inputs: {prefix!r}")
    if isinstance(prefix, dict):
        if set(prefix) != set(tree):
            raise ValueError(f"{what} keys {sorted(prefix)} do not match the input keys {sorted(tree)}")
        return [v for k in tree for v in broadcast_prefix(prefix[k], tree[k], what)]
    return [v for p, t in zip(prefix, tree, strict=True) for v in broadcast_prefix(p, t, what)]


def tensor_leaves(tree) -> list[Tensor]:
    return [leaf for leaf in tree_flatten(tree)[0] if isinstance(leaf, Tensor)]
