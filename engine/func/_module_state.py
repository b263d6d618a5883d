"""``functional_call`` (a module run with other parameters/buffers) and ``stack_module_state``."""

from __future__ import annotations

from engine.tensor import Tensor


def _owner(module, name: str):
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        sub = owner._modules.get(part)
        if sub is None:
            raise AttributeError(f"{type(owner).__name__} has no submodule {part!r} (from key {name!r})")
        owner = sub
    return owner, leaf


def _merge(parameter_and_buffer_dicts) -> dict:
    if isinstance(parameter_and_buffer_dicts, dict):
        return dict(parameter_and_buffer_dicts)
    if not isinstance(parameter_and_buffer_dicts, (tuple, list)):
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
                         f"{type(parameter_and_buffer_dicts)}")
    merged: dict = {}
    for d in parameter_and_buffer_dicts:
        repeated = sorted(set(merged) & set(d))
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is "
                             "ambiguous")
        merged.update(d)
    return merged


def _tied_names(module) -> dict[str, list[str]]:
    """Each name of a tensor that appears under several names, mapped to all its names."""
    by_id: dict[int, list[str]] = {}
    for name, t in list(module.named_parameters(remove_duplicate=False)) + list(
            module.named_buffers(remove_duplicate=False)):
        by_id.setdefault(id(t), []).append(name)
    return {n: names for names in by_id.values() if len(names) > 1 for n in names}


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """Call ``module`` with its parameters and buffers replaced by ``parameter_and_buffer_dicts``.

    The module is restored afterwards, also when the call raises (as ``torch.func.functional_call``).
    """
    values = _merge(parameter_and_buffer_dicts)
    known = dict(module.named_parameters(remove_duplicate=False)) | dict(module.named_buffers(remove_duplicate=False))
    if tie_weights:
        for name, names in _tied_names(module).items():
            if name in values:
                given = [n for n in names if n in values]
                if any(values[n] is not values[name] for n in given):
                    raise ValueError(f"functional_call got multiple values for keys {sorted(given)}, which are "
                                     "tied. Consider using tie_weights=False")
                for n in names:
                    values.setdefault(n, values[name])
    if strict:
        missing = sorted(set(known) - set(values))
        unexpected = sorted(set(values) - set(known))
        if missing or unexpected:
            parts = []
            if unexpected:
                parts.append("Unexpected key(s): " + ", ".join(repr(k) for k in unexpected) + ".")
            if missing:
                parts.append("Missing key(s): " + ", ".join(repr(k) for k in missing) + ".")
            raise RuntimeError(f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(parts))
    for name, value in values.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"functional_call: expected a Tensor for {name!r}, got {type(value)}")
    swapped = []  # (store, key, old value or a marker for "was absent")
    try:
        for name, value in values.items():
            owner, leaf = _owner(module, name)
            for store in (owner._parameters, owner._buffers):
                if leaf in store:
                    swapped.append((store, leaf, store[leaf]))
                    store[leaf] = value
                    break
            else:
                swapped.append((owner.__dict__, leaf, owner.__dict__.get(leaf, _ABSENT)))
                owner.__dict__[leaf] = value
        if args is None:
            args = ()
        elif not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for store, key, old in reversed(swapped):
            if old is _ABSENT:
                del store[key]
            else:
                store[key] = old


_ABSENT = object()


def stack_module_state(models) -> tuple[dict, dict]:
    """The parameters and buffers of same-shaped ``models`` stacked along a new leading dimension.

    Stacked parameters are new leaves (requiring grad where the originals do), as torch returns them.
    """
    from engine.ops.shape import stack

    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    first = type(models[0])
    if not all(type(m) is first for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(named):
        names = [n for n, _ in named(models[0])]
        out = {}
        for name in names:
            tensors = [dict(named(m))[name] for m in models]
            result = stack([t.detach() for t in tensors])
            if tensors[0].requires_grad:
                result.requires_grad_()
            out[name] = result
        return out

    return (stacked(lambda m: list(m.named_parameters())), stacked(lambda m: list(m.named_buffers())))
