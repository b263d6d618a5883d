"""Attach operators and methods to ``Tensor`` from the op modules (``x.exp()``, ``x + y`` ...).

Each method is the same function as the top-level form (``engine.exp(x)`` is ``x.exp()``); only the
reflected operators and a few PyTorch argument orders need small adapters.
"""

from __future__ import annotations

import numpy as np

from engine import creation, random
from engine.ops import (
    activation,
    arithmetic,
    comparison,
    conversion,
    diagonal,
    indexing,
    inplace,
    linalg,
    reduction,
    shape,
    sorting,
    unary,
)
from engine.tensor import Tensor, _make

_METHODS_FROM = {
    diagonal: ["diagonal", "diag", "diag_embed"],
    arithmetic: ["add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
                 "pow", "float_power", "remainder", "fmod", "maximum", "minimum", "fmax", "fmin", "clamp", "clip",
                 "clamp_min", "clamp_max", "lerp", "addcmul", "addcdiv"],
    unary: ["exp", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan",
            "atan", "arctan", "tanh", "sigmoid", "erf", "neg", "negative", "abs", "absolute", "sign", "floor",
            "ceil", "trunc", "fix", "round", "square", "frac", "signbit", "nan_to_num", "isnan", "isinf",
            "isfinite"],
    activation: ["relu", "softmax", "log_softmax"],
    comparison: ["eq", "ne", "lt", "le", "gt", "ge", "less", "less_equal", "greater", "greater_equal", "not_equal",
                 "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
                 "bitwise_xor", "bitwise_not", "isclose", "allclose", "equal"],
    reduction: ["sum", "mean", "var", "std", "prod", "max", "min", "amax", "amin", "argmax", "argmin",
                "logsumexp", "norm", "cumsum", "cumprod", "all", "any", "count_nonzero"],
    linalg: ["matmul", "mm", "bmm", "mv", "dot", "inner", "outer", "ger", "addmm", "baddbmm", "addmv"],
    shape: ["reshape", "view", "view_as", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze", "permute",
            "transpose", "swapaxes", "swapdims", "t", "movedim", "moveaxis", "expand", "expand_as",
            "broadcast_to", "repeat", "tile", "narrow", "split", "chunk", "unbind", "select", "flip", "fliplr",
            "flipud", "roll", "tril", "triu", "repeat_interleave"],
    indexing: ["gather", "scatter", "scatter_add", "index_select", "masked_fill", "masked_select",
               "take_along_dim", "nonzero", "argwhere"],
    sorting: ["sort", "argsort", "topk", "msort", "kthvalue"],
    conversion: ["to", "clone", "contiguous", "type_as"],
    inplace: ["add_", "sub_", "mul_", "div_", "copy_", "fill_", "zero_"],
}

_INPLACE_OF = {
    "exp_": unary.exp, "log_": unary.log, "log1p_": unary.log1p, "expm1_": unary.expm1,
    "sqrt_": unary.sqrt, "rsqrt_": unary.rsqrt, "reciprocal_": unary.reciprocal, "sin_": unary.sin,
    "cos_": unary.cos, "tanh_": unary.tanh, "sigmoid_": unary.sigmoid, "erf_": unary.erf, "neg_": unary.neg,
    "abs_": unary.abs, "sign_": unary.sign, "floor_": unary.floor, "ceil_": unary.ceil, "trunc_": unary.trunc,
    "round_": unary.round, "square_": unary.square, "relu_": activation.relu, "pow_": arithmetic.pow,
    "clamp_": arithmetic.clamp, "clip_": arithmetic.clamp, "clamp_min_": arithmetic.clamp_min,
    "clamp_max_": arithmetic.clamp_max, "lerp_": arithmetic.lerp, "addcmul_": arithmetic.addcmul,
    "addcdiv_": arithmetic.addcdiv, "remainder_": arithmetic.remainder, "fmod_": arithmetic.fmod,
    "maximum_": arithmetic.maximum, "minimum_": arithmetic.minimum, "masked_fill_": indexing.masked_fill,
    "scatter_": indexing.scatter, "scatter_add_": indexing.scatter_add, "nan_to_num_": unary.nan_to_num,
    "tril_": shape.tril, "triu_": shape.triu,
}


def _where_method(self, condition, other):
    return arithmetic.where(condition, self, other)


def _random_inplace(sample):
    def method(self, *args, generator=None, **kwargs):
        drawn = sample(self, *args, generator=generator, **kwargs)
        return inplace.copy_(self, drawn) if inplace.recording(self) else _write(self, drawn)

    return method


def _write(self, drawn):
    self._data[...] = drawn._data
    self._vc[0] += 1
    return self


def _uniform(self, a=0.0, b=1.0, *, generator=None):
    out = creation.rand(self._data.shape, dtype=self._dtype, device=self._device, generator=generator)
    out._data = out._data * (b - a) + a if (a, b) != (0.0, 1.0) else out._data
    return out


def _normal(self, mean=0.0, std=1.0, *, generator=None):
    out = creation.randn(self._data.shape, dtype=self._dtype, device=self._device, generator=generator)
    out._data = out._data * std + mean if (mean, std) != (0.0, 1.0) else out._data
    return out


def _bernoulli(self, p=0.5, *, generator=None):
    probs = p._data if isinstance(p, Tensor) else p
    gen = generator or random.generator_for(self._device)
    uniform = gen.uniform_array(self._data.shape, np.float64)
    return _make((uniform < probs).astype(self._dtype.np), self._dtype, self._device)


def _random_ints(self, low=0, high=None, *, generator=None):
    if high is None:
        low, high = 0, low
    return creation.randint(low, high, self._data.shape, dtype=self._dtype, device=self._device, generator=generator)


def _new_factory(factory):
    def method(self, *size, dtype=None, device=None, requires_grad=False, **kwargs):
        return factory(*size, dtype=dtype or self._dtype, device=device or self._device,
                       requires_grad=requires_grad, **kwargs)

    return method


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    return creation.full(size, fill_value, dtype=dtype or self._dtype, device=device or self._device,
                         requires_grad=requires_grad)


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    return creation.tensor(data, dtype=dtype or self._dtype, device=device or self._device,
                           requires_grad=requires_grad)


def _reflected(fn):
    def method(self, other):
        return fn(other, self)

    return method


def _iop(fn):
    def method(self, other):
        return fn(self, other)

    return method


def install() -> None:
    """Attach every method and operator to ``Tensor`` (called once by ``engine/__init__``)."""
    for module, names in _METHODS_FROM.items():
        for name in names:
            setattr(Tensor, name, getattr(module, name))
    for name, fn in _INPLACE_OF.items():
        if fn is not None:
            setattr(Tensor, name, inplace.make_inplace(fn))
    Tensor.where = _where_method
    Tensor.uniform_ = _random_inplace(_uniform)
    Tensor.normal_ = _random_inplace(_normal)
    Tensor.bernoulli_ = _random_inplace(_bernoulli)
    Tensor.random_ = _random_inplace(_random_ints)
    Tensor.new_zeros = _new_factory(creation.zeros)
    Tensor.new_ones = _new_factory(creation.ones)
    Tensor.new_empty = _new_factory(creation.empty)
    Tensor.new_full = _new_full
    Tensor.new_tensor = _new_tensor
    Tensor.T = property(shape.T)
    Tensor.mT = property(shape.mT)
    Tensor.H = property(shape.T)
    Tensor.mH = property(shape.mT)

    Tensor.__add__ = arithmetic.add_op
    Tensor.__radd__ = arithmetic.radd_op
    Tensor.__sub__ = arithmetic.sub_op
    Tensor.__rsub__ = arithmetic.rsub_op
    Tensor.__mul__ = arithmetic.mul_op
    Tensor.__rmul__ = arithmetic.rmul_op
    Tensor.__truediv__ = arithmetic.truediv_op
    Tensor.__rtruediv__ = arithmetic.rtruediv_op
    Tensor.__floordiv__ = arithmetic.floordiv_op
    Tensor.__rfloordiv__ = arithmetic.rfloordiv_op
    Tensor.__mod__ = arithmetic.mod_op
    Tensor.__rmod__ = arithmetic.rmod_op
    Tensor.__pow__ = arithmetic.pow_op
    Tensor.__rpow__ = arithmetic.rpow_op
    Tensor.__matmul__ = linalg.matmul
    Tensor.__rmatmul__ = _reflected(linalg.matmul)
    Tensor.__neg__ = unary.neg
    Tensor.__pos__ = lambda self: self
    Tensor.__abs__ = unary.abs
    Tensor.__eq__ = comparison.eq
    Tensor.__ne__ = comparison.ne
    Tensor.__lt__ = comparison.lt
    Tensor.__le__ = comparison.le
    Tensor.__gt__ = comparison.gt
    Tensor.__ge__ = comparison.ge
    Tensor.__and__ = comparison.and_op
    Tensor.__rand__ = _reflected(comparison.and_op)
    Tensor.__or__ = comparison.or_op
    Tensor.__ror__ = _reflected(comparison.or_op)
    Tensor.__xor__ = comparison.xor_op
    Tensor.__rxor__ = _reflected(comparison.xor_op)
    Tensor.__invert__ = comparison.invert_op
    Tensor.__getitem__ = indexing.getitem
    Tensor.__setitem__ = indexing.setitem
    Tensor.__iadd__ = _iop(inplace.add_)
    Tensor.__isub__ = _iop(inplace.sub_)
    Tensor.__imul__ = _iop(inplace.mul_)
    Tensor.__itruediv__ = _iop(inplace.div_)
    Tensor.__ipow__ = _iop(Tensor.pow_)
    Tensor.__iand__ = _iop(inplace.make_inplace(comparison.bitwise_and))
    Tensor.__ior__ = _iop(inplace.make_inplace(comparison.bitwise_or))
