"""``engine.torch_version`` (``torch.torch_version``): ``TorchVersion``, a version string that compares
with strings, tuples and versions (``engine.__version__ >= (2, 0)``)."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


class TorchVersion(str):
    """A ``str`` that compares as a version."""

    def _cmp_wrapper(self, other):
        if isinstance(other, tuple):
            other = ".".join(str(item) for item in other)
        try:
            return Version(str(self)), Version(str(other))
        except InvalidVersion as error:
            raise ValueError(f"cannot compare version {self!r} with {other!r}") from error

    def __lt__(self, other):
        a, b = self._cmp_wrapper(other)
        return a < b

    def __le__(self, other):
        a, b = self._cmp_wrapper(other)
        return a <= b

    def __gt__(self, other):
        a, b = self._cmp_wrapper(other)
        return a > b

    def __ge__(self, other):
        a, b = self._cmp_wrapper(other)
        return a >= b

    def __eq__(self, other):
        if isinstance(other, str) and not isinstance(other, TorchVersion):
            return str.__eq__(self, other)
        a, b = self._cmp_wrapper(other)
        return a == b

    __hash__ = str.__hash__
