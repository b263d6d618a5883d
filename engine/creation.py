"""Tensor factories: tensor, as_tensor, from_numpy, zeros/ones/full/empty (+ ``_like``), arange,
linspace, logspace, eye, and the random factories rand, randn, randint, randperm, normal,
bernoulli, multinomial."""

from __future__ import annotations

import math

import numpy as np

from engine import backend
from engine.device import CPU, as_device
from engine.dtypes import (
    FLOAT,
    as_dtype,
    bool_,
    from_numpy_dtype,
    get_default_dtype,
    int64,
)
from engine.random import generator_for
from engine.tensor import Tensor, _make


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = size[0]
    out = tuple(int(s) for s in size)
    for s in out:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(out)}")
    return out


def _size_arg(name: str, args: tuple, size) -> tuple:
    """``f(2, 3)``, ``f((2, 3))`` or PyTorch's keyword ``f(size=(2, 3))`` (a sequence, as PyTorch requires)."""
    if size is None:
        return _size(args)
    if args:
        raise TypeError(f"{name}() got multiple values for argument 'size'")
    if not isinstance(size, list | tuple):
        raise TypeError(f"{name}(): argument 'size' must be tuple of ints, not {type(size).__name__}")
    return _size((size,))


def _finish(data, dtype, device, requires_grad: bool) -> Tensor:
    t = _make(data, dtype, device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _alloc(device, fn, *args, **kwargs):
    """Call an array factory of the device's array module on that device."""
    if device is CPU:
        return fn(np, *args, **kwargs)
    with backend.use_device(device):
        return fn(device.xp, *args, **kwargs)


# ----- from data ---------------------------------------------------------------------------------
def _infer_dtype(data, array: np.ndarray):
    """PyTorch's inference: Python floats -> default float, ints -> int64, bools -> bool."""
    if isinstance(data, np.ndarray | np.generic):
        return from_numpy_dtype(array.dtype)
    kind = array.dtype.kind
    if kind == "b":
        return bool_
    if kind in "iu":
        return int64
    if kind == "f":
        return get_default_dtype()
    if kind == "c":  # Python complex numbers -> the complex dtype of the default float
        return get_default_dtype().to_complex()
    raise TypeError(f"can't build a tensor from data of NumPy dtype {array.dtype}")


def _nested_to_array(data):
    if isinstance(data, list | tuple) and any(isinstance(x, Tensor) for x in _flatten_first(data)):
        data = _tensors_to_lists(data)
    return np.asarray(data)


def _flatten_first(data):
    while isinstance(data, list | tuple) and data:
        yield data[0]
        data = data[0]


def _tensors_to_lists(data):
    if isinstance(data, Tensor):
        return data.tolist() if data._dtype.category != FLOAT else backend.to_numpy(data._data)
    if isinstance(data, list | tuple):
        return [_tensors_to_lists(x) for x in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new tensor copied from ``data`` (nested lists, numbers, NumPy arrays or tensors).

    Example:
        >>> engine.tensor([[1, 2], [3, 4]], dtype=engine.float32)
    """
    device = as_device(device) if device is not None else None
    if isinstance(data, Tensor):
        out = data.detach().to(dtype=dtype, device=device, copy=True)
        return _finish(out._data, out._dtype, out._device, requires_grad)
    array = _nested_to_array(data) if not isinstance(data, np.ndarray) else data
    target = as_dtype(dtype) if dtype is not None else _infer_dtype(data, array)
    array = np.array(array, dtype=target.np, copy=True)
    device = device or CPU
    if device is not CPU:
        array = backend.to_device_array(array, device)
    return _finish(array, target, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but reuses ``data``'s memory when dtype and device already match."""
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device)
    if isinstance(data, np.ndarray) and (dtype is None or as_dtype(dtype).np == data.dtype) and \
            as_device(device) is CPU:
        return from_numpy(data)
    if not isinstance(data, list | tuple | np.ndarray | np.generic | int | float | bool):
        cp = backend._cupy()
        if cp is not None and isinstance(data, cp.ndarray):
            from engine.device import device as make_device

            out = _make(data, from_numpy_dtype(data.dtype), make_device("cuda", data.device.id))
            return out.to(dtype=dtype, device=device)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing ``array``'s memory."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return _make(array, from_numpy_dtype(array.dtype), CPU)


def scalar_tensor(value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    device = as_device(device)
    data = _alloc(device, lambda xp: xp.asarray(value, dtype=dtype.np))
    return _finish(data, dtype, device, requires_grad)


# ----- filled ------------------------------------------------------------------------------------
def _factory_dtype(dtype):
    return get_default_dtype() if dtype is None else as_dtype(dtype)


def zeros(*args, size=None, dtype=None, device=None, requires_grad: bool = False, out=None, layout=None) -> Tensor:
    dtype, device, shape = _factory_dtype(dtype), as_device(device), _size_arg("zeros", args, size)
    return _finish(_alloc(device, lambda xp: xp.zeros(shape, dtype.np)), dtype, device, requires_grad)


def ones(*args, size=None, dtype=None, device=None, requires_grad: bool = False, out=None, layout=None) -> Tensor:
    dtype, device, shape = _factory_dtype(dtype), as_device(device), _size_arg("ones", args, size)
    return _finish(_alloc(device, lambda xp: xp.ones(shape, dtype.np)), dtype, device, requires_grad)


def empty(*args, size=None, dtype=None, device=None, requires_grad: bool = False, out=None, layout=None,
          pin_memory: bool = False, memory_format=None) -> Tensor:
    dtype, device, shape = _factory_dtype(dtype), as_device(device), _size_arg("empty", args, size)
    return _finish(_alloc(device, lambda xp: xp.empty(shape, dtype.np)), dtype, device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False, layout=None) -> Tensor:
    if dtype is None:
        if isinstance(fill_value, Tensor):
            fill_value = fill_value.item()
        dtype = bool_ if isinstance(fill_value, bool) else int64 if isinstance(fill_value, int) else get_default_dtype()
    dtype, device = as_dtype(dtype), as_device(device)
    shape = _size((size,) if isinstance(size, int) else tuple(size))
    return _finish(_alloc(device, lambda xp: xp.full(shape, fill_value, dtype.np)), dtype, device, requires_grad)


def _like(input: Tensor, dtype, device):
    return (input._dtype if dtype is None else as_dtype(dtype)), (input._device if device is None else as_device(device))


def zeros_like(input, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return zeros(input._data.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return ones(input._data.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return empty(input._data.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return full(input._data.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


# ----- ranges ------------------------------------------------------------------------------------
def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (inclusive) to ``end`` (exclusive) by ``step``."""
    if end is None:
        start, end = 0, start
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = values
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        dtype = int64 if all(isinstance(v, int) for v in values) else get_default_dtype()
    dtype, device = as_dtype(dtype), as_device(device)
    count = max(math.ceil((end - start) / step), 0)
    if dtype.category == FLOAT:
        data = (start + np.arange(count, dtype=np.float64) * step).astype(dtype.np)
    else:
        data = (start + np.arange(count, dtype=np.int64) * step).astype(dtype.np)
    if device is not CPU:
        data = backend.to_device_array(data, device)
    return _finish(data, dtype, device, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _factory_dtype(dtype), as_device(device)
    data = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    if dtype.category != FLOAT:
        data = np.trunc(data)
    data = data.astype(dtype.np)
    if device is not CPU:
        data = backend.to_device_array(data, device)
    return _finish(data, dtype, device, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    exponents = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    dtype, device = _factory_dtype(dtype), as_device(device)
    data = (base ** exponents).astype(dtype.np)
    if device is not CPU:
        data = backend.to_device_array(data, device)
    return _finish(data, dtype, device, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _factory_dtype(dtype), as_device(device)
    data = _alloc(device, lambda xp: xp.eye(n, n if m is None else m, dtype=dtype.np))
    return _finish(data, dtype, device, requires_grad)


# ----- random --------------------------------------------------------------------------------------
def _generator(generator, device):
    return generator if generator is not None else generator_for(device)


def _float_dtype(dtype, name: str):
    dtype = _factory_dtype(dtype)
    if dtype.is_complex and name == "randn":
        return dtype
    if dtype.category != FLOAT:
        raise RuntimeError(f"{name}: expected a floating point dtype, got {dtype.name}")
    return dtype


def rand(*args, size=None, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples on [0, 1)."""
    dtype, device, shape = _float_dtype(dtype, "rand"), as_device(device), _size_arg("rand", args, size)
    data = _alloc(device, lambda xp: _generator(generator, device).uniform_array(shape, dtype.np))
    return _finish(data, dtype, device, requires_grad)


def randn(*args, size=None, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    dtype, device, shape = _float_dtype(dtype, "randn"), as_device(device), _size_arg("randn", args, size)
    if dtype.is_complex:  # NOTE: as PyTorch: real and imaginary parts each N(0, 1/2), so E|z|^2 = 1
        parts = randn(*shape, 2, generator=generator, dtype=dtype.to_real(), device=device)
        data = (parts * 0.5 ** 0.5)._data.view(dtype.np)[..., 0]
        return _finish(data.copy(), dtype, device, requires_grad)
    data = _alloc(device, lambda xp: _generator(generator, device).normal_array(shape, dtype.np))
    return _finish(data, dtype, device, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high); ``randint(high, size)`` starts at 0."""
    if size is None:
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint() missing the 'size' argument")
    dtype, device = (int64 if dtype is None else as_dtype(dtype)), as_device(device)
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    data = _alloc(device, lambda xp: _generator(generator, device).integers_array(int(low), int(high),
                                                                                 _size(tuple(size)), dtype.np))
    return _finish(data, dtype, device, requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1``; on CPU the same one PyTorch returns for the same seed."""
    if int(n) < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {int(n)}: [{int(n)}]")
    dtype, device = (int64 if dtype is None else as_dtype(dtype)), as_device(device)
    data = _alloc(device, lambda xp: _generator(generator, device).permutation_array(int(n)).astype(dtype.np))
    return _finish(data, dtype, device, requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return rand(input._data.shape, dtype=dtype, device=device, requires_grad=requires_grad, generator=generator)


def randn_like(input, *, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return randn(input._data.shape, dtype=dtype, device=device, requires_grad=requires_grad, generator=generator)


def randint_like(input, low, high=None, *, dtype=None, device=None, generator=None) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return randint(low, high, input._data.shape, dtype=dtype, device=device, generator=generator)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples; ``mean``/``std`` are numbers (with ``size``) or tensors (broadcast)."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        from engine.ops.shape import broadcast_shapes

        like = mean if isinstance(mean, Tensor) else std
        shape = broadcast_shapes(*(t._data.shape for t in (mean, std) if isinstance(t, Tensor)))
        noise = randn(shape, generator=generator, dtype=like._dtype, device=like._device)
        with _no_grad():
            return noise * std + mean
    if size is None:
        raise TypeError("normal() with number mean and std needs a size")
    noise = randn(*((size,) if isinstance(size, int) else tuple(size)), generator=generator, dtype=dtype,
                  device=device)
    noise._data = (noise._data * std + mean).astype(noise._dtype.np, copy=False)
    return noise.requires_grad_(requires_grad)


def _no_grad():
    from engine.autograd.grad_mode import no_grad

    return no_grad()


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """1 with probability ``input`` (or ``p``), else 0; same shape and dtype as ``input``."""
    probs = input._data if p is None else p
    device = input._device
    uniform = _alloc(device, lambda xp: _generator(generator, device).uniform_array(input._data.shape, np.float64))
    dtype = input._dtype if input._dtype.category == FLOAT else get_default_dtype()
    return _make((uniform < probs).astype(dtype.np), dtype, device)


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Indices sampled from the rows of ``input`` (non-negative weights, not necessarily normalized)."""
    device = input._device
    xp = device.xp
    weights = input._data.astype(np.float64)
    single = weights.ndim == 1
    if single:
        weights = weights[None]
    if (weights < 0).any() or not xp.isfinite(weights).all():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = weights.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rows, categories = weights.shape
    gen = _generator(generator, device)
    if replacement:
        cdf = xp.cumsum(weights / totals, axis=1)
        cdf[:, -1] = 1.0
        u = _alloc(device, lambda _: gen.uniform_array((rows, num_samples), np.float64))
        out = xp.stack([xp.searchsorted(cdf[r], u[r], side="right") for r in range(rows)])
        out = xp.minimum(out, categories - 1)
    else:
        if num_samples > categories:
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
        if ((weights > 0).sum(axis=1) < num_samples).any():
            raise RuntimeError("invalid multinomial distribution (with replacement=False, not enough non-negative "
                               "category to sample)")
        # NOTE: Gumbel-top-k: the k largest log(w) + Gumbel noise are a sample without replacement.
        u = _alloc(device, lambda _: gen.uniform_array((rows, categories), np.float64))
        with backend.quiet_fp():
            keys = xp.log(weights) - xp.log(-xp.log(xp.clip(u, 1e-300, 1.0)))
        out = xp.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64)
    return _make(out[0] if single else out, int64, device)
