"""``Parameter`` (a tensor a Module registers as learnable) and ``Buffer`` (registered state)."""

from __future__ import annotations

from engine.tensor import Tensor, _init_slots

_new = object.__new__


def _empty():
    from engine.creation import empty

    return empty(0)


class Parameter(Tensor):
    """A Tensor that a ``Module`` lists in ``parameters()`` when assigned as an attribute.

    It shares memory with ``data`` and requires grad by default.

    Example:
        >>> w = nn.Parameter(engine.zeros(3))
        >>> w.requires_grad
        True
    """

    # NOTE: no __slots__ here: like torch, parameters accept ad-hoc attributes (p.no_decay = True).

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            data = _empty()
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter data must be a Tensor, got {type(data).__name__}")
        self = _new(cls)
        _init_slots(self)
        self._data = data._data
        self._dtype = data._dtype
        self._device = data._device
        if requires_grad:
            self.requires_grad_(True)
        return self

    def __init__(self, data=None, requires_grad: bool = True):
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        from engine import backend

        return (_rebuild_parameter, (backend.to_numpy(self._data), self._dtype.name, str(self._device),
                                     self._requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(Tensor.__deepcopy__(self.detach(), {}), self._requires_grad)
        if self.grad is not None:
            out.grad = self.grad.__deepcopy__({})
        if hasattr(self, "__dict__"):
            out.__dict__.update(self.__dict__)
        memo[id(self)] = out
        return out


def _rebuild_parameter(array, dtype_name, device_str, requires_grad):
    from engine.tensor import _rebuild

    return Parameter(_rebuild(array, dtype_name, device_str, False), requires_grad)


class UninitializedTensorMixin:
    """A tensor of unknown shape that a lazy module fills in at its first forward (``materialize``)."""

    __slots__ = ()
    cls_to_become: type

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Become a ``cls_to_become`` of ``shape`` (uninitialised values), keeping device and dtype unless given."""
        from engine.creation import empty

        fresh = empty(shape, device=self.device if device is None else device,  # type: ignore[attr-defined]
                      dtype=self.dtype if dtype is None else dtype)  # type: ignore[attr-defined]
        self.data = fresh  # type: ignore[attr-defined]
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError("Can't access the shape of an uninitialized parameter or buffer. This error usually "
                           "happens in `load_state_dict` when trying to load an uninitialized parameter into an "
                           "initialized one. Call `forward` to initialize the parameters before accessing their "
                           "attributes.")

    def share_memory_(self):
        raise RuntimeError("Can't share memory on an uninitialized parameter or buffer. Call `forward` to "
                           "initialize the parameters before calling `module.share_memory()`.")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, protocol):
        return (type(self), (self.requires_grad,))  # type: ignore[attr-defined]

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = type(self)(self.requires_grad, self.device, self.dtype)  # type: ignore[attr-defined]
        return memo[id(self)]


def is_lazy(value) -> bool:
    """Whether ``value`` is an uninitialized parameter or buffer."""
    return isinstance(value, UninitializedTensorMixin)


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A Parameter whose shape a lazy module infers at its first forward; then it becomes a ``Parameter``.

    Example:
        >>> p = nn.UninitializedParameter()
        >>> p.materialize((2, 3)); type(p).__name__, tuple(p.shape)
        ('Parameter', (2, 3))
    """

    cls_to_become = Parameter

    def __new__(cls, requires_grad: bool = True, device=None, dtype=None):
        from engine.creation import empty

        return Parameter.__new__(cls, empty(0, device=device, dtype=dtype), requires_grad)

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        pass


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape a lazy module infers at its first forward; then it becomes a plain ``Tensor``."""

    __slots__ = ()
    cls_to_become = Tensor

    def __new__(cls, requires_grad: bool = False, device=None, dtype=None, persistent: bool = True):
        from engine.creation import empty

        data = empty(0, device=device, dtype=dtype)
        self = _new(cls)
        _init_slots(self)
        self._data, self._dtype, self._device = data._data, data._dtype, data._device
        if requires_grad:
            self.requires_grad_(True)
        return self

    def __init__(self, requires_grad: bool = False, device=None, dtype=None, persistent: bool = True):
        pass


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a Module attribute.

    ``module.x = nn.Buffer(t)`` is ``module.register_buffer("x", t)``; the stored value is ``t`` itself.
    """

    def __new__(cls, data=None, *, persistent: bool = True):
        if data is None:
            data = _empty()
        self = _new(cls)
        _init_slots(self)
        self._data, self._dtype, self._device = data._data, data._dtype, data._device
        self._requires_grad = data._requires_grad
        self.persistent = persistent
        self.source = data
        return self

    def __init__(self, data=None, *, persistent: bool = True):
        pass
