"""The methods of the later op families (trig, pointwise, statistics, index_update, split_stack,
combinatorics, bucketing), the torch.special aliases and their in-place forms, random fills, and tensor
plumbing (``data_ptr``, ``storage_offset``, ``resize_``, ``t_`` ...). ``install_breadth`` attaches them.
"""

from __future__ import annotations

import numpy as np

from engine import creation
from engine.ops import conversion, inplace
from engine.tensor import Tensor
from engine.tensor_methods import _normal, _random_inplace, _uniform


def _breadth_tables():
    import engine.nn.functional as F
    from engine import special
    from engine.dtype_helpers import get_device, is_nonzero, is_same_size, is_signed
    from engine.ops import bucketing, combinatorics, index_update, pointwise, split_stack, statistics, trig

    methods = {
        **{n: getattr(trig, n) for n in ("asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin",
                                         "arccos", "arcsinh", "arccosh", "arctanh", "atan2", "arctan2", "hypot",
                                         "deg2rad", "rad2deg")},
        **{n: getattr(pointwise, n) for n in ("copysign", "heaviside", "logaddexp", "logaddexp2", "ldexp", "gcd",
                                              "lcm", "nextafter", "frexp", "positive", "bitwise_left_shift",
                                              "bitwise_right_shift")},
        **{n: getattr(statistics, n) for n in ("aminmax", "cummax", "cummin", "logcumsumexp", "median", "mode",
                                               "nanmean", "nanmedian", "nanquantile", "nansum", "quantile", "diff",
                                               "dist", "trace", "cov", "corrcoef", "renorm")},
        **{n: getattr(index_update, n) for n in ("index_add", "index_copy", "index_fill", "index_put",
                                                 "index_reduce", "masked_scatter", "put", "take", "scatter_reduce")},
        **{n: getattr(split_stack, n) for n in ("tensor_split", "hsplit", "vsplit", "dsplit", "split_with_sizes",
                                                "unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes", "ravel",
                                                "narrow_copy", "rot90", "diagflat", "slice_scatter", "select_scatter",
                                                "diagonal_scatter", "unfold")},
        **{n: getattr(combinatorics, n) for n in ("kron", "vdot", "addr", "addbmm")},
        **{n: getattr(bucketing, n) for n in ("bincount", "histc", "histogram", "unique", "unique_consecutive")},
        "digamma": special.digamma, "erfc": special.erfc, "erfinv": special.erfinv, "exp2": special.exp2,
        "i0": special.i0, "lgamma": special.gammaln, "logit": special.logit, "sinc": special.sinc,
        "xlogy": special.xlogy, "mvlgamma": special.multigammaln, "polygamma": _polygamma_method,
        "is_nonzero": is_nonzero, "is_same_size": is_same_size, "is_signed": is_signed, "get_device": get_device,
        "isposinf": pointwise.isposinf, "isneginf": pointwise.isneginf, "isreal": pointwise.isreal,
        "nonzero_static": bucketing.nonzero_static, "hardshrink": F.hardshrink, "prelu": F.prelu,
        "sum_to_size": _sum_to_size, "data_ptr": _data_ptr, "const_data_ptr": _data_ptr,
        "storage_offset": _storage_offset, "dim_order": _dim_order,
    }
    # in-place forms: new ops, and existing ones PyTorch also has as ``x.op_()``
    inplace_of = {name: methods[name] for name in (
        "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin", "arccos", "arcsinh", "arccosh",
        "arctanh", "atan2", "arctan2", "hypot", "deg2rad", "rad2deg", "copysign", "heaviside", "ldexp", "gcd", "lcm",
        "nextafter", "bitwise_left_shift", "bitwise_right_shift", "index_add", "index_copy", "index_fill",
        "index_put", "index_reduce", "masked_scatter", "put", "scatter_reduce", "renorm", "digamma", "erfc", "erfinv",
        "exp2", "i0", "lgamma", "logit", "sinc", "xlogy", "mvlgamma", "polygamma", "addbmm", "addr")}
    inplace_of.update({name: getattr(Tensor, name) for name in (
        "absolute", "arctan", "atan", "tan", "log2", "log10", "fix", "frac", "negative", "eq", "ne", "lt", "le", "gt",
        "ge", "less", "less_equal", "greater", "greater_equal", "not_equal", "logical_and", "logical_or",
        "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "divide",
        "true_divide", "floor_divide", "multiply", "subtract", "float_power", "cumsum", "cumprod", "sgn", "addmm",
        "addmv", "baddbmm", "conj_physical")})
    return methods, inplace_of


def _on_private_copy(fn):
    """``fn`` reading a copy of its input while autograd records: a composite op may save the input at
    any step (not only its last node), and the in-place write must not invalidate what it saved."""

    def compute(x, *args, **kwargs):
        if inplace.recording(x, *args, *kwargs.values()):
            x = conversion.clone(x)
        return fn(x, *args, **kwargs)

    compute.__name__ = fn.__name__
    return compute


def _sum_to_size(self, *size):
    """Sum ``self`` down to ``size`` (the inverse of expanding to ``self``'s shape)."""
    from engine.ops import grad_math

    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], list | tuple) else tuple(size)
    shape = self._data.shape
    lead = len(shape) - len(size)
    if lead < 0 or any(s not in (1, t) for s, t in zip(size, shape[lead:], strict=True)):
        raise RuntimeError(f"size {{{', '.join(map(str, size))}}} is not expandable to size "
                           f"{{{', '.join(map(str, shape))}}}.")
    return grad_math.sum_to(self, size)


def _data_ptr(self) -> int:
    """The address of the first element."""
    data = self._data
    return data.ctypes.data if isinstance(data, np.ndarray) else data.data.ptr


def _storage_offset(self) -> int:
    """The first element's offset, in elements, from the start of the memory it views."""
    data = self._data
    if isinstance(data, np.ndarray):
        base = data
        while isinstance(base.base, np.ndarray):
            base = base.base
        start = base.ctypes.data
    else:
        start = data.data.mem.ptr
    return (_data_ptr(self) - start) // data.itemsize


def _dim_order(self, *, ambiguity_check=False) -> tuple:
    """The dims from outermost to innermost in memory (by decreasing stride)."""
    strides = self._data.strides
    return tuple(sorted(range(self._data.ndim), key=lambda d: -strides[d]))


def _inplace_view(op):
    """``x.t_()`` from ``x.t()``: ``x`` takes the view's shape (and its place in the graph)."""

    def method(self, *args, **kwargs):
        result = op(self, *args, **kwargs)
        if inplace.recording(self):
            if self.grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            self.grad_fn, self._output_nr = result.grad_fn, result._output_nr
        self._data = result._data
        self._vc[0] += 1
        return self

    method.__name__ = op.__name__ + "_"
    return method


def _polygamma_method(self, n: int):
    from engine import special

    return special.polygamma(n, self)


def _fill_diagonal_(self, fill_value, wrap: bool = False):
    """Fill the main diagonal (all dims equal, or a tall matrix that ``wrap`` continues every n+1 rows)."""
    shape = self._data.shape
    if self._data.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if self._data.ndim > 2 and len(set(shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    xp = self._device.xp
    n = min(shape)
    if self._data.ndim == 2:
        rows = xp.arange(shape[0] if wrap else n)
        rows = rows[rows % (shape[1] + 1) < shape[1]] if wrap else rows
        cols = rows % (shape[1] + 1) if wrap else rows
        index = (rows, cols)
    else:
        index = (xp.arange(n),) * self._data.ndim
    self[index] = fill_value
    return self


def _exponential(self, lambd=1.0, *, generator=None):
    u = _uniform(self, generator=generator)
    u._data = (-np.log1p(-u._data.astype(np.float64)) / lambd).astype(self._dtype.np) if u._device.xp is np else \
        (-u._device.xp.log1p(-u._data) / lambd).astype(self._dtype.np)
    return u


def _geometric(self, p, *, generator=None):
    u = _uniform(self, generator=generator)
    xp = u._device.xp
    u._data = xp.ceil(xp.log1p(-u._data.astype(np.float64)) / np.log1p(-p)).clip(1).astype(self._dtype.np)
    return u


def _cauchy(self, median=0.0, sigma=1.0, *, generator=None):
    u = _uniform(self, generator=generator)
    xp = u._device.xp
    u._data = (median + sigma * xp.tan(np.pi * (u._data.astype(np.float64) - 0.5))).astype(self._dtype.np)
    return u


def _log_normal(self, mean=1.0, std=2.0, *, generator=None):
    out = _normal(self, mean, std, generator=generator)
    out._data = out._device.xp.exp(out._data)
    return out


def _apply_(self, callable):
    """Apply a Python function to every element, in place (CPU only and slow, as in PyTorch)."""
    if self._device.type != "cpu":
        raise TypeError("apply_ is only implemented on CPU tensors")
    flat = self._data.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = callable(flat[i].item())
    self._vc[0] += 1
    return self


def _map_(self, other, callable):
    """``self[i] = callable(self[i], other[i])`` with ``other`` broadcast (CPU only, as in PyTorch)."""
    if self._device.type != "cpu":
        raise TypeError("map_ is only implemented on CPU tensors")
    flat = self._data.reshape(-1)
    others = np.broadcast_to(other._data, self._data.shape).reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = callable(flat[i].item(), others[i].item())
    self._vc[0] += 1
    return self


def _map2_(self, x, y, callable):
    """``self[i] = callable(self[i], x[i], y[i])`` with ``x``, ``y`` broadcast (CPU only, as in PyTorch)."""
    if self._device.type != "cpu":
        raise TypeError("map2_ is only implemented on CPU tensors")
    flat = self._data.reshape(-1)
    xs = np.broadcast_to(x._data, self._data.shape).reshape(-1)
    ys = np.broadcast_to(y._data, self._data.shape).reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = callable(flat[i].item(), xs[i].item(), ys[i].item())
    self._vc[0] += 1
    return self


def _resize_(self, *size, memory_format=None):
    """Give ``self`` the shape ``size`` in place, keeping the leading elements (new ones uninitialised)."""
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], list | tuple) else tuple(size)
    if self._requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    if any(s < 0 for s in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(size)}")
    xp = self._device.xp
    data = xp.empty(size, dtype=self._data.dtype)
    kept = min(data.size, self._data.size)
    data.reshape(-1)[:kept] = self._data.reshape(-1)[:kept]
    self._data = data
    self._vc[0] += 1
    return self


def _resize_as_(self, other, *, memory_format=None):
    return _resize_(self, tuple(other.shape))


def _legacy_new(self, *args, device=None):
    """``x.new(2, 3)`` (an uninitialised tensor), ``x.new([1, 2])`` (data) or ``x.new(t)``, in ``x``'s
    dtype and device."""
    if len(args) == 1 and isinstance(args[0], Tensor):
        if args[0]._dtype is not self._dtype:
            raise TypeError(f"new(): expected a tensor of dtype {self._dtype.name}, got {args[0]._dtype.name}")
        return args[0].detach()
    if len(args) == 1 and isinstance(args[0], list | tuple | np.ndarray):  # a sequence is data, as in PyTorch
        return creation.tensor(args[0], dtype=self._dtype, device=device or self._device)
    return creation.empty(*args, dtype=self._dtype, device=device or self._device)


def _new_empty_strided(self, size, stride, *, dtype=None, device=None, requires_grad=False):
    from engine.creation_windows import empty_strided

    return empty_strided(size, stride, dtype=dtype or self._dtype, device=device or self._device,
                         requires_grad=requires_grad)


def _bernoulli_method(self, p=None, *, generator=None):
    return creation.bernoulli(self, p, generator=generator)


def _multinomial_method(self, num_samples, replacement=False, *, generator=None):
    return creation.multinomial(self, num_samples, replacement, generator=generator)


def install_breadth() -> dict:
    """Attach the breadth methods and in-place forms to ``Tensor``; returns the torch-level in-place
    functions (``torch.abs_`` ...), the same functions as the methods."""
    methods, inplace_of = _breadth_tables()
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    toplevel = {}
    for name, fn in inplace_of.items():
        method = inplace.make_inplace(_on_private_copy(fn))
        method.__name__ = name + "_"
        setattr(Tensor, name + "_", method)
        toplevel[name + "_"] = method
    for name in ("squeeze", "unsqueeze", "t", "transpose", "swapaxes", "swapdims"):
        setattr(Tensor, name + "_", _inplace_view(getattr(Tensor, name)))
    Tensor.output_nr = property(lambda self: self._output_nr)
    from engine.autograd.post_accumulate import register_post_accumulate_grad_hook

    Tensor.register_post_accumulate_grad_hook = register_post_accumulate_grad_hook
    Tensor.fill_diagonal_ = _fill_diagonal_
    Tensor.exponential_ = _random_inplace(_exponential)
    Tensor.geometric_ = _random_inplace(_geometric)
    Tensor.cauchy_ = _random_inplace(_cauchy)
    Tensor.log_normal_ = _random_inplace(_log_normal)
    Tensor.apply_ = _apply_
    Tensor.map2_ = _map2_
    Tensor.resize_ = _resize_
    Tensor.resize_as_ = _resize_as_
    Tensor.new = _legacy_new
    toplevel["resize_as_"] = _resize_as_
    # devices the engine has no backend for (as is_xpu / is_mps)
    Tensor.is_ipu = Tensor.is_maia = Tensor.is_mtia = Tensor.is_xla = False
    Tensor.map_ = _map_
    Tensor.new_empty_strided = _new_empty_strided
    Tensor.bernoulli = _bernoulli_method
    Tensor.multinomial = _multinomial_method
    Tensor.cfloat = lambda self: self.to(creation.as_dtype("complex64"))
    Tensor.cdouble = lambda self: self.to(creation.as_dtype("complex128"))
    # torch-level in-place forms of ops the Tensor already had as methods (torch.exp_, torch.relu_ ...)
    for name in ("abs", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tanh",
                 "sigmoid", "erf", "neg", "sign", "floor", "ceil", "trunc", "round", "square", "clamp", "clip",
                 "clamp_min", "clamp_max", "nan_to_num", "zero", "fill", "detach", "sinh", "cosh", "addmv"):
        if hasattr(Tensor, name + "_"):
            toplevel.setdefault(name + "_", getattr(Tensor, name + "_"))
    return toplevel
