"""``cupy.cuda.memory_hook`` (fake): ``MemoryHook``, whose ``with`` block sees every fake allocation and free."""

from __future__ import annotations

from fake_cupy import _core


class MemoryHook:
    """Subclass and override ``malloc_postprocess`` / ``free_postprocess`` (keyword arguments, as CuPy's)."""

    name = "MemoryHook"

    def __enter__(self):
        _core._Memory.hooks.append(self)
        return self

    def __exit__(self, *exc):
        _core._Memory.hooks.remove(self)
        return False

    def alloc_preprocess(self, **kwargs):
        pass

    def alloc_postprocess(self, **kwargs):
        pass

    def malloc_preprocess(self, **kwargs):
        pass

    def malloc_postprocess(self, **kwargs):
        pass

    def free_preprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass
