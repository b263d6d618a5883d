"""``engine.Tensor``: an n-dimensional array on a device, with autograd metadata.

The class holds storage and metadata only; the operations (``x.exp()``, ``x + y``,
``x.sum(dim)``) are attached by ``engine.tensor_methods`` from ``engine.ops``.
"""

from __future__ import annotations

import weakref

import numpy as np

from engine import backend
from engine.device import CPU, as_device
from engine.dtypes import FROM_NUMPY, as_dtype, from_numpy_dtype, get_default_dtype

_new = object.__new__
_generic = np.generic


class Size(tuple):
    """A tensor shape: a tuple with ``numel()``, like ``torch.Size``."""

    __slots__ = ()

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"engine.Size({list(self)})"


class Tensor:
    """An n-dimensional array of one dtype on one device, recorded by autograd.

    Create tensors with ``engine.tensor``, ``engine.zeros``, ``engine.randn`` ...;
    ``engine.Tensor(data)`` builds a float tensor like ``torch.Tensor``.

    Example:
        >>> x = engine.tensor([1.0, 2.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4.])
    """

    __slots__ = ("__weakref__", "_base", "_data", "_device", "_dtype", "_hooks", "_output_nr",
                 "_requires_grad", "_vc", "grad", "grad_fn")
    # NOTE: NumPy then defers `ndarray <op> tensor` to our reflected operators.
    __array_ufunc__ = None
    __hash__ = object.__hash__
    is_quantized = False  # engine.ao.quantization.qtensor.QTensor says True
    # NOTE: devices and layouts the engine never makes, answered as PyTorch answers for a dense tensor.
    is_sparse = False
    is_sparse_csr = False
    is_mps = False
    is_xpu = False
    is_meta = False
    is_nested = False

    def __new__(cls, *args, **kwargs):
        self = _new(cls)
        _init_slots(self)
        return self

    def __init__(self, *args, device=None, dtype=None):
        from engine import creation

        if args and all(isinstance(a, int) for a in args):
            made = creation.empty(*args, dtype=dtype or get_default_dtype(), device=device)
        elif len(args) == 1 and isinstance(args[0], Tensor):
            made = args[0]
        elif len(args) == 1:
            made = creation.tensor(args[0], dtype=dtype or get_default_dtype(), device=device)
        elif not args:
            made = creation.empty(0, dtype=dtype or get_default_dtype(), device=device)
        else:
            raise TypeError(f"Tensor() got unsupported arguments {args!r}")
        self._data = made._data
        self._dtype = made._dtype
        self._device = made._device

    # ----- metadata -------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        """The shape, or the length of dimension ``dim``."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[dim]

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self._device.type == "cpu"

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        return self._dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self._dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.size * self._dtype.itemsize

    def stride(self, dim: int | None = None):
        strides = tuple(s // self._dtype.itemsize for s in self._data.strides)
        return strides if dim is None else strides[dim]

    def is_contiguous(self, memory_format=None) -> bool:
        return bool(self._data.flags.c_contiguous)

    def dequantize(self) -> Tensor:
        """A float tensor is its own dequantized form (quantized tensors override this)."""
        return self

    def is_floating_point(self) -> bool:
        return self._dtype.is_floating_point

    def is_complex(self) -> bool:
        return self._dtype.is_complex

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    # ----- autograd flags -------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf tensor in place; returns self."""
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want "
                                   "to use a computed variable in a subgraph that doesn't require "
                                   "differentiation use var_no_grad = var.detach().")
            return self
        if requires_grad and not self._dtype.differentiable:
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients "
                               f"(this one is {self._dtype.name})")
        self._requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A tensor sharing this one's memory (and version counter) with no graph history."""
        out = _make(self._data, self._dtype, self._device)
        out._vc = self._vc
        out._base = self
        return out

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        return _make(self._data, self._dtype, self._device)

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data
        self._dtype = value._dtype
        self._device = value._device

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        node = self.grad_fn
        if node is None:
            return
        if node._retained is None:
            node._retained = {}
        node._retained[self._output_nr] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        node = self.grad_fn
        return node is not None and node._retained is not None and self._output_nr in node._retained

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new grad.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node = self.grad_fn
        if node is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if node._pre_hooks is None:
                node._pre_hooks = {}
            hooks = node._pre_hooks.setdefault(self._output_nr, [])
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad."""
        from engine.autograd.graph import backward

        backward((self,), None if gradient is None else (gradient,), retain_graph, create_graph, inputs)

    # ----- conversion -----------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a NumPy array, sharing memory on CPU."""
        if force:
            return backend.to_numpy(self._data)
        if self._requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        if self._device.type != "cpu":
            raise TypeError(f"can't convert {self._device} device type tensor to numpy. "
                            "Use Tensor.cpu() to copy the tensor to host memory first.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if self._device.type != "cpu":  # as PyTorch: no implicit copy of device memory to the host
            raise TypeError(f"can't convert {self._device} device type tensor to numpy. "
                            "Use Tensor.cpu() to copy the tensor to host memory first.")
        array = self._data
        if dtype is not None and np.dtype(dtype) != array.dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        value = backend.to_numpy(self._data).reshape(())
        if self._dtype.is_floating_point:
            return float(value)
        return value.item()

    def tolist(self):
        """The data as (nested) Python lists of Python numbers."""
        array = backend.to_numpy(self._data)
        if self._dtype.is_floating_point and array.dtype != np.float64:
            array = array.astype(np.float64)
        return array.tolist()

    def cpu(self) -> Tensor:
        return self.to(CPU)

    def cuda(self, device=None, non_blocking: bool = False) -> Tensor:
        if device is None:
            device = "cuda"
        elif isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(as_device(device))

    def type(self, dtype=None):
        if dtype is None:
            return f"engine.{self._dtype.name}"
        return self.to(as_dtype(dtype))

    def float(self) -> Tensor:
        return self.to(as_dtype("float32"))

    def double(self) -> Tensor:
        return self.to(as_dtype("float64"))

    def half(self) -> Tensor:
        return self.to(as_dtype("float16"))

    def bfloat16(self) -> Tensor:
        return self.to(as_dtype("bfloat16"))

    def int(self) -> Tensor:
        return self.to(as_dtype("int32"))

    def long(self) -> Tensor:
        return self.to(as_dtype("int64"))

    def short(self) -> Tensor:
        return self.to(as_dtype("int16"))

    def char(self) -> Tensor:
        return self.to(as_dtype("int8"))

    def byte(self) -> Tensor:
        return self.to(as_dtype("uint8"))

    def bool(self) -> Tensor:
        return self.to(as_dtype("bool"))

    # ----- Python protocols -----------------------------------------------------
    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {'no' if self._data.size == 0 else 'more than one'}"
                               " values is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._dtype.differentiable or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return self.item().__format__(spec)
        return repr(self) if not spec else object.__format__(self, spec)

    def __repr__(self) -> str:
        from engine.tensor_repr import tensor_repr

        return tensor_repr(self)

    def __reduce_ex__(self, protocol):
        if self.grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support pickling "
                               "and deepcopy; call .detach() first")
        return (_rebuild, (backend.to_numpy(self._data), self._dtype.name, str(self._device),
                           self._requires_grad))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the "
                               "deepcopy protocol at the moment; call .detach() first")
        out = _new(type(self))
        _init_slots(out)
        out._data = self._data.copy()
        out._dtype = self._dtype
        out._device = self._device
        out._requires_grad = self._requires_grad
        if self.grad is not None:
            out.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = out
        return out


def _init_slots(t: Tensor) -> None:
    t._requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._output_nr = 0
    t._vc = [0]
    t._base = None
    t._hooks = None


def _rebuild(array, dtype_name, device_str, requires_grad):
    out = _make(np.array(array), as_dtype(dtype_name), CPU)
    if device_str != "cpu":
        out = out.to(device_str)
    out._requires_grad = requires_grad
    return out


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("_hook", "_hooks")

    def __init__(self, hooks: list, hook):
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _make(data, dtype, device) -> Tensor:
    """Wrap an array (already of ``dtype`` on ``device``) in a fresh leaf tensor."""
    t = _new(Tensor)
    t._data = data
    t._dtype = dtype
    t._device = device
    t._requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._output_nr = 0
    t._vc = [0]
    t._base = None
    t._hooks = None
    return t


def wrap(data, device) -> Tensor:
    """Wrap an op's result array (or NumPy scalar) in a fresh tensor, inferring its dtype."""
    if isinstance(data, _generic):
        data = np.asarray(data)
    try:
        dtype = FROM_NUMPY[data.dtype]
    except KeyError:
        dtype = from_numpy_dtype(data.dtype)
    t = _new(Tensor)
    t._data = data
    t._dtype = dtype
    t._device = device
    t._requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._output_nr = 0
    t._vc = [0]
    t._base = None
    t._hooks = None
    return t


def result_like(data, like: Tensor) -> Tensor:
    """A fresh tensor for ``data``, which has ``like``'s dtype and device.

    This is the graph-free fast path of hot ops (no grad needed): no node, no dtype lookup.
    """
    if isinstance(data, _generic):
        data = np.asarray(data)
    t = _new(Tensor)
    t._data = data
    t._dtype = like._dtype
    t._device = like._device
    t._requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._output_nr = 0
    t._vc = [0]
    t._base = None
    t._hooks = None
    return t


def make_view(data, source: Tensor) -> Tensor:
    """Wrap ``data``, a view of ``source``'s memory: shares its version counter and base."""
    t = _make(data, source._dtype, source._device)
    t._vc = source._vc
    t._base = source if source._base is None else source._base
    return t


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)
