"""``engine.layout`` and its two values, ``engine.strided`` (dense) and ``engine.sparse_coo``."""

from __future__ import annotations


class layout:
    """How a tensor's elements are stored (as ``torch.layout``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"engine.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


strided = layout("strided")
sparse_coo = layout("sparse_coo")


def _by_name(name: str) -> layout:
    return {"strided": strided, "sparse_coo": sparse_coo}[name]
