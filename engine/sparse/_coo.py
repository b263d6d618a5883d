"""``SparseCOOTensor``: a tensor stored as coordinates (``indices``, sparse_dim x nnz) and ``values``.

The values are an ordinary tensor, so autograd runs through them: ``sparse_coo_tensor(i, v)`` with ``v``
requiring grad gives a sparse tensor whose gradients reach ``v``, and a sparse leaf
(``requires_grad=True``) gets a sparse ``.grad`` at its stored entries, as PyTorch. Dense-only operations
are refused with a clear error instead of acting on the values array.
"""

from __future__ import annotations

import numpy as np

from engine.sparse._layout import sparse_coo
from engine.tensor import Size, Tensor, _make

_new = object.__new__

# Tensor members a sparse tensor answers itself or may inherit safely; every other method raises.
_INHERITED = {
    "dtype", "device", "is_cuda", "is_cpu", "element_size", "itemsize", "is_floating_point", "is_complex",
    "is_leaf", "_version", "is_quantized", "is_sparse_csr", "is_mps", "is_xpu", "is_meta", "is_nested",
    "retains_grad", "retain_grad", "register_hook", "backward", "type", "__weakref__", "__array_ufunc__",
    "__hash__", "__init__", "__new__",
}


class SparseCOOTensor(Tensor):
    """A sparse tensor in coordinate format (``layout == engine.sparse_coo``); build it with
    ``engine.sparse_coo_tensor`` or ``dense.to_sparse()``.

    Example:
        >>> s = engine.sparse_coo_tensor([[0, 1], [1, 0]], [2.0, 3.0], (2, 2))
        >>> (s @ engine.ones(2, 1)).flatten()
        tensor([2., 3.])
    """

    __slots__ = ("_coalesced", "_indices_t", "_size", "_values_t")
    is_sparse = True
    layout = sparse_coo

    # ----- metadata -------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._size)

    def size(self, dim: int | None = None):
        return Size(self._size) if dim is None else self._size[dim]

    @property
    def ndim(self) -> int:
        return len(self._size)

    def dim(self) -> int:
        return len(self._size)

    ndimension = dim

    def numel(self) -> int:
        return Size(self._size).numel()

    nelement = numel

    def sparse_dim(self) -> int:
        return self._indices_t.shape[0]

    def dense_dim(self) -> int:
        return len(self._size) - self._indices_t.shape[0]

    def _nnz(self) -> int:
        return self._indices_t.shape[1]

    def is_coalesced(self) -> bool:
        return self._coalesced

    def _indices(self) -> Tensor:
        return self._indices_t

    def _values(self) -> Tensor:
        return self._values_t

    def indices(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call .coalesce() first")
        return self._indices_t

    def values(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call .coalesce() first")
        return self._values_t

    # ----- autograd (carried by the values) --------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._values_t.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._values_t.requires_grad = value

    def requires_grad_(self, requires_grad: bool = True) -> SparseCOOTensor:
        self._values_t.requires_grad_(requires_grad)
        return self

    @property
    def grad_fn(self):
        return self._values_t.grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._values_t.is_leaf

    @property
    def grad(self):
        g = self._values_t.grad
        if g is None:
            return None
        if self._coalesced:
            return _build(self._indices_t, g, self._size, True)
        # Each stored copy of a position received the whole d(loss)/d(entry): keep one per position.
        idx = self._indices_t.cpu().numpy()
        keys = np.ravel_multi_index(tuple(idx), self._size[:idx.shape[0]])
        _, first = np.unique(keys, return_index=True)
        pick = _tensor(first.astype(np.int64), g.device)
        return _build(self._indices_t[:, pick], g[pick], self._size, True)

    @grad.setter
    def grad(self, value) -> None:
        if value is None:
            self._values_t.grad = None
        else:
            self._values_t.grad = value.coalesce()._values_t if value.is_sparse else value

    @property
    def data(self) -> SparseCOOTensor:
        return self.detach()

    def __len__(self) -> int:
        return self._size[0]

    def __deepcopy__(self, memo):
        import copy

        return _build(copy.deepcopy(self._indices_t, memo), copy.deepcopy(self._values_t, memo), self._size,
                      self._coalesced)

    def detach(self) -> SparseCOOTensor:
        return _build(self._indices_t, self._values_t.detach(), self._size, self._coalesced)

    # ----- conversions --------------------------------------------------------------------
    def coalesce(self) -> SparseCOOTensor:
        """Sorted, duplicate-free coordinates; duplicates' values summed (differentiably)."""
        if self._coalesced:
            return self
        idx = self._indices_t.cpu().numpy()
        if idx.shape[1] == 0:
            return _build(self._indices_t, self._values_t, self._size, True)
        keys = np.ravel_multi_index(tuple(idx), self._size[:idx.shape[0]])
        unique, inverse = np.unique(keys, return_inverse=True)
        new_idx = np.stack(np.unravel_index(unique, self._size[:idx.shape[0]])).astype(np.int64)
        dev = self._values_t.device
        inverse_t = _tensor(inverse.astype(np.int64), dev)
        summed = _sum_rows(self._values_t, inverse_t, unique.shape[0])
        return _build(_tensor(new_idx, dev), summed, self._size, True)

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        """The dense tensor, differentiable with respect to the values."""
        s = self.coalesce()
        n_sparse = s.sparse_dim()
        idx = s._indices_t.cpu().numpy()
        flat = np.ravel_multi_index(tuple(idx), self._size[:n_sparse]) if idx.shape[1] else np.zeros(0, np.int64)
        rows = Size(self._size[:n_sparse]).numel()
        out = _sum_rows(s._values_t, _tensor(flat.astype(np.int64), s._values_t.device), rows)
        out = out.reshape(self._size)
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None) -> SparseCOOTensor:
        if layout not in (None, sparse_coo):
            raise NotImplementedError(f"to_sparse: only the sparse_coo layout is supported, got {layout}")
        return self

    def to(self, *args, **kwargs) -> SparseCOOTensor:
        return _build(self._indices_t.to(*[a for a in args if not _is_dtype(a)],
                                         **{k: v for k, v in kwargs.items() if k != "dtype"}),
                      self._values_t.to(*args, **kwargs), self._size, self._coalesced)

    def cuda(self, device=None, non_blocking: bool = False) -> SparseCOOTensor:
        return self.to("cuda" if device is None else device)

    def cpu(self) -> SparseCOOTensor:
        return self.to("cpu")

    def float(self) -> SparseCOOTensor:
        return self._with_values(self._values_t.float())

    def double(self) -> SparseCOOTensor:
        return self._with_values(self._values_t.double())

    def half(self) -> SparseCOOTensor:
        return self._with_values(self._values_t.half())

    def _with_values(self, values: Tensor) -> SparseCOOTensor:
        return _build(self._indices_t, values, self._size, self._coalesced)

    # ----- arithmetic --------------------------------------------------------------------
    def t(self) -> SparseCOOTensor:
        if self.sparse_dim() != 2 or self.dense_dim() != 0:
            raise RuntimeError(f"t() expects a 2-D sparse tensor, got sparse_dim={self.sparse_dim()}, "
                               f"dense_dim={self.dense_dim()}")
        return self.transpose(0, 1)

    def transpose(self, dim0: int, dim1: int) -> SparseCOOTensor:
        n = self.sparse_dim()
        d0, d1 = dim0 % self.dim(), dim1 % self.dim()
        if d0 >= n or d1 >= n:
            raise NotImplementedError("transpose of a sparse tensor's dense dimensions is not supported")
        order = list(range(n))
        order[d0], order[d1] = order[d1], order[d0]
        size = list(self._size)
        size[d0], size[d1] = size[d1], size[d0]
        return _build(self._indices_t[order], self._values_t, tuple(size), False)

    def mul(self, other) -> SparseCOOTensor:
        if isinstance(other, Tensor) and other.dim() != 0:
            raise NotImplementedError("sparse * tensor is supported for scalars and 0-d tensors only")
        return self._with_values(self._values_t * other)

    __mul__ = __rmul__ = mul

    def div(self, other) -> SparseCOOTensor:
        if isinstance(other, Tensor) and other.dim() != 0:
            raise NotImplementedError("sparse / tensor is supported for scalars and 0-d tensors only")
        return self._with_values(self._values_t / other)

    __truediv__ = div

    def neg(self) -> SparseCOOTensor:
        return self._with_values(-self._values_t)

    __neg__ = neg

    def add(self, other, *, alpha=1):
        if not (isinstance(other, Tensor) and other.is_sparse):
            return self.to_dense() + (other * alpha if alpha != 1 else other)
        if tuple(other.shape) != self._size:
            raise RuntimeError(f"add: expected sizes to match, got {list(self._size)} and {list(other.shape)}")
        from engine.ops.shape import cat

        values = other._values_t * alpha if alpha != 1 else other._values_t
        return _build(cat([self._indices_t, other._indices_t], 1), cat([self._values_t, values]), self._size,
                      False)

    __add__ = __radd__ = add

    def sub(self, other, *, alpha=1):
        return self.add(other, alpha=-alpha)

    __sub__ = sub

    def __rsub__(self, other):
        return self.neg().add(other)

    def mm(self, mat2) -> Tensor:
        from engine.sparse import mm

        return mm(self, mat2)

    def matmul(self, other) -> Tensor:
        from engine.sparse import matmul

        return matmul(self, other)

    __matmul__ = matmul

    def __rmatmul__(self, other) -> Tensor:
        from engine.sparse import matmul

        return matmul(other, self)

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        from engine.sparse import sum as sparse_sum

        if keepdim:
            raise NotImplementedError("sum(keepdim=True) is not supported for sparse tensors")
        return sparse_sum(self, dim, dtype=dtype) if dim is not None else sparse_sum(self, dtype=dtype)

    def __repr__(self) -> str:
        from engine.tensor_repr import tensor_repr

        body = (f"tensor(indices={_indent(tensor_repr(self._indices_t))},\n       "
                f"values={_indent(tensor_repr(self._values_t))},\n       size={self._size}, nnz={self._nnz()}, ")
        if self._values_t.dtype is not _default_dtype():
            body += f"dtype={self._values_t.dtype}, "
        if self.device.type != "cpu":
            body += f"device='{self.device}', "
        return body + "layout=engine.sparse_coo" + (", requires_grad=True)" if self.requires_grad else ")")

    def numpy(self, *, force: bool = False):
        raise TypeError("can't convert a sparse COO tensor to numpy: call .to_dense() first")


def _indent(text: str) -> str:
    return text.replace("\n", "\n       ")


def _default_dtype():
    from engine.dtypes import get_default_dtype

    return get_default_dtype()


def _is_dtype(a) -> bool:
    from engine.dtypes import dtype

    return isinstance(a, dtype)


def _refuse(name: str):
    def refused(self, *args, **kwargs):
        raise NotImplementedError(f"Tensor.{name} is not supported for sparse COO tensors in this engine; "
                                  "convert with .to_dense() first")

    refused.__name__ = name
    return refused


def guard_dense_methods() -> None:
    """Make every dense-only Tensor method refuse a sparse tensor (called once Tensor is complete)."""
    own = set(vars(SparseCOOTensor))
    for name, member in list(vars(Tensor).items()):
        if name in own or name in _INHERITED or (not callable(member) and not isinstance(member, property)):
            continue
        if isinstance(member, property):
            setattr(SparseCOOTensor, name, property(_refuse(name)))
        elif name not in ("__class__", "__getattribute__", "__setattr__", "__delattr__", "__init_subclass__",
                          "__subclasshook__", "__dir__", "__sizeof__", "__reduce__", "__getstate__"):
            setattr(SparseCOOTensor, name, _refuse(name))


def _tensor(array: np.ndarray, device) -> Tensor:
    from engine.dtypes import int64

    return _make(device.xp.asarray(array), int64, device)


def _sum_rows(values: Tensor, index: Tensor, n: int) -> Tensor:
    """``out[index[k]] += values[k]`` over the first dimension, differentiably (via sparse @ dense)."""
    from engine.sparse._matmul import SparseDenseMM

    flat = values.reshape(values.shape[0], -1) if values.dim() != 1 else values.reshape(-1, 1)
    ones = values.new_ones(values.shape[0])
    # (n x nnz) selection matrix with ones at (index[k], k), times the values
    rows = SparseDenseMM.apply(ones, flat, index, _arange(values.shape[0], values.device), n)
    return rows.reshape((n, *values.shape[1:]))


def _arange(n: int, device) -> Tensor:
    from engine.dtypes import int64

    return _make(device.xp.arange(n, dtype=np.int64), int64, device)


def _build(indices: Tensor, values: Tensor, size, coalesced: bool) -> SparseCOOTensor:
    t = _new(SparseCOOTensor)
    for slot, value in (("_requires_grad", False), ("grad", None), ("grad_fn", None), ("_output_nr", 0),
                        ("_vc", [0]), ("_base", None), ("_hooks", None)):
        vars(Tensor)[slot].__set__(t, value)  # the base slots, under the properties this class defines
    t._indices_t, t._values_t, t._size, t._coalesced = indices, values, tuple(int(s) for s in size), coalesced
    t._data, t._dtype, t._device = values._data, values._dtype, values._device
    return t


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad: bool = False, check_invariants=None, is_coalesced=None) -> SparseCOOTensor:
    """A sparse COO tensor with ``values`` at ``indices`` (sparse_dim x nnz), as ``torch.sparse_coo_tensor``."""
    from engine.creation import as_tensor
    from engine.dtypes import int64

    values = values if isinstance(values, Tensor) else as_tensor(values, dtype=dtype)
    if dtype is not None and values.dtype is not dtype:
        values = values.to(dtype)
    if device is not None:
        values = values.to(device)
    idx = indices if isinstance(indices, Tensor) else as_tensor(indices, dtype=int64)
    if idx.is_floating_point() or idx.dtype.name == "bool":
        raise RuntimeError(f"indices must be an int64 tensor, got {idx.dtype}")
    idx = idx.to(device=values.device, dtype=int64)
    if idx.dim() != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(idx.shape)}")
    if values.dim() == 0 or values.shape[0] != idx.shape[1]:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: {idx.shape[1]}, "
                           f"nnz from values: {values.shape[0] if values.dim() else 0}")
    host = idx.cpu().numpy()
    if host.size and host.min() < 0:
        raise RuntimeError(f"found negative index {int(host.min())} for dim {int(np.argmin(host.min(1)))}")
    n_sparse = idx.shape[0]
    if size is None:
        size = tuple(int(m) + 1 for m in host.max(1)) if host.size else (0,) * n_sparse
        size = size + tuple(values.shape[1:])
    size = tuple(int(s) for s in size)
    if len(size) != n_sparse + values.dim() - 1:
        raise RuntimeError(f"number of dimensions must be sparse_dim ({n_sparse}) + dense_dim "
                           f"({values.dim() - 1}), but got {len(size)}")
    if tuple(values.shape[1:]) != size[n_sparse:]:
        raise RuntimeError(f"values has incorrect size, expected {[values.shape[0], *size[n_sparse:]]}, "
                           f"got {list(values.shape)}")
    for d in range(n_sparse):
        if host.size and host[d].max() >= size[d]:
            raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {size[d]} but found "
                               f"index {int(host[d].max())}")
    if requires_grad:
        values = values.detach().requires_grad_()
    return _build(idx, values, size, bool(is_coalesced) or idx.shape[1] <= 1)


def dense_to_sparse(self: Tensor, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
    """``Tensor.to_sparse``: the nonzero entries (or sub-tensors) of a dense tensor, coalesced."""
    if layout not in (None, sparse_coo):
        raise NotImplementedError(f"to_sparse: only the sparse_coo layout is supported, got {layout}")
    n_sparse = self.dim() if sparse_dim is None else int(sparse_dim)
    if not 0 < n_sparse <= self.dim():
        raise RuntimeError(f"sparse_dim must be in [1, {self.dim()}] for a {self.dim()}-D tensor, got {n_sparse}")
    data = self._data
    mask = data != 0
    if n_sparse < self.dim():
        mask = mask.any(axis=tuple(range(n_sparse, self.dim())))
    coords = self._device.xp.stack(self._device.xp.nonzero(mask)).astype(np.int64)
    idx = _make(coords.reshape(n_sparse, -1), _int64(), self._device)
    values = self[tuple(idx[d] for d in range(n_sparse))]
    return _build(idx, values, tuple(self.shape), True)


def _int64():
    from engine.dtypes import int64

    return int64
