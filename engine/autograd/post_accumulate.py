"""``Tensor.register_post_accumulate_grad_hook``: ``hook(leaf)`` runs after backward has accumulated a
gradient into ``leaf.grad`` (an optimizer step per parameter inside backward, as PyTorch's tutorial does)."""

from __future__ import annotations

import weakref

# id(leaf) -> (weak reference to the leaf, its hooks); an entry goes when its leaf is collected
_HOOKS: dict[int, tuple] = {}


class _Handle:
    """``remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def register_post_accumulate_grad_hook(self, hook) -> _Handle:
    if not self._requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self.grad_fn is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    key = id(self)
    entry = _HOOKS.get(key)
    if entry is None or entry[0]() is not self:
        entry = (weakref.ref(self, lambda _, key=key: _HOOKS.pop(key, None)), [])
        _HOOKS[key] = entry
    entry[1].append(hook)
    return _Handle(entry[1], hook)


def run(leaf) -> None:
    """Call ``leaf``'s post-accumulate hooks (the autograd engine calls this after writing ``leaf.grad``)."""
    entry = _HOOKS.get(id(leaf))
    if entry is not None and entry[0]() is leaf:
        for hook in list(entry[1]):
            hook(leaf)
