"""``engine.device``: where a tensor's memory lives (``cpu`` or ``cuda:N``)."""

from __future__ import annotations

from engine import backend


class device:
    """A device such as ``device("cpu")`` or ``device("cuda", 0)``; instances are interned.

    Example:
        >>> import engine
        >>> engine.device("cuda:1").index
        1
    """

    __slots__ = ("index", "type", "xp")
    _interned: dict = {}

    def __new__(cls, type_or_spec="cpu", index: int | None = None):
        if isinstance(type_or_spec, device):
            return type_or_spec
        if isinstance(type_or_spec, int):
            type_or_spec, index = "cuda", type_or_spec
        key = (type_or_spec, index)
        found = cls._interned.get(key)
        if found is not None:
            return found
        kind, parsed_index = _parse(type_or_spec, index)
        canonical = (kind, parsed_index)
        obj = cls._interned.get(canonical)
        if obj is None:
            obj = object.__new__(cls)
            obj.type = kind
            obj.index = parsed_index
            if kind == "cpu":
                obj.xp = backend.get_array_module(obj)
            cls._interned[canonical] = obj
        cls._interned[key] = obj
        return obj

    def __getattr__(self, name):
        # ``xp`` (the array module: numpy or cupy) is filled in on first use for CUDA devices,
        # so that naming a CUDA device never requires CuPy.
        if name == "xp":
            self.xp = backend.get_array_module(self)
            return self.xp
        raise AttributeError(name)

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __reduce__(self):
        return (device, (str(self),))


def _parse(spec, index):
    if not isinstance(spec, str):
        raise TypeError(f"device() expects a string like 'cpu' or 'cuda:0', got {spec!r}")
    kind, _, suffix = spec.partition(":")
    if kind not in ("cpu", "cuda"):
        raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {spec}")
    if suffix:
        if index is not None:
            raise RuntimeError(f"device string {spec!r} already has an index; don't pass index={index}")
        if not suffix.isdigit():
            raise RuntimeError(f"Invalid device string: {spec!r}")
        index = int(suffix)
    if kind == "cpu":
        index = None
    elif index is None:
        index = 0
    return kind, index


CPU = device("cpu")


def as_device(d) -> device:
    """Accept a device, a string, or a CUDA ordinal; None means CPU."""
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    return device(d)


def device_of_array(array) -> device:
    """The device holding a NumPy (cpu) or CuPy (cuda:N) array."""
    if type(array).__module__ == "numpy":
        return CPU
    return device("cuda", array.device.id)
