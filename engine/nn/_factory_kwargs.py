"""``nn.factory_kwargs``: the ``device`` / ``dtype`` / ``memory_format`` a layer forwards to tensor factories."""

from __future__ import annotations

_SIMPLE_KEYS = {"device", "dtype", "memory_format"}


def factory_kwargs(kwargs) -> dict:
    """A canonical dict of factory kwargs from ``kwargs`` (as ``torch.nn.factory_kwargs``).

    Only ``device``, ``dtype``, ``memory_format`` and a nested ``factory_kwargs`` dict are accepted; a key given
    both directly and in ``factory_kwargs`` is an error.

    Example:
        >>> nn.factory_kwargs({"device": "cpu", "factory_kwargs": {"dtype": engine.float64}})
        {'dtype': engine.float64, 'device': 'cpu'}
    """
    if kwargs is None:
        return {}
    expected = _SIMPLE_KEYS | {"factory_kwargs"}
    if not kwargs.keys() <= expected:
        raise TypeError(f"unexpected kwargs {kwargs.keys() - expected}")
    result = dict(kwargs.get("factory_kwargs", {}))
    for key in sorted(_SIMPLE_KEYS):
        if key in kwargs:
            if key in result:
                raise TypeError(f"{key} specified twice, in **kwargs and in factory_kwargs")
            result[key] = kwargs[key]
    return result
