"""NaN-aware and order-statistic reductions, scans and differences: nansum, nanmean, median, nanmedian,
quantile, nanquantile, mode, aminmax, cummax, cummin, logcumsumexp, diff, trace, dist, cov, corrcoef,
trapezoid, cumulative_trapezoid.

Values are built from differentiable engine ops (sort, gather, cumsum ...), so gradients follow
PyTorch's: an order statistic sends its gradient to the element it picked.
"""

from __future__ import annotations

import builtins
from collections import namedtuple

from engine import backend
from engine.autograd.function import Function
from engine.backend import fp_ignore, fp_restore
from engine.dtypes import FLOAT, int64
from engine.ops.arithmetic import where
from engine.ops.diagonal import diagonal
from engine.ops.indexing import gather
from engine.ops.promotion import to_float
from engine.ops.reduction import amax, amin, normalize_dim
from engine.ops.reduction import sum as sum_
from engine.ops.shape import cat, narrow
from engine.ops.sorting import sort
from engine.ops.unary import exp, isnan, log
from engine.tensor import Tensor, wrap

MedianResult = namedtuple("median", ["values", "indices"])
NanmedianResult = namedtuple("nanmedian", ["values", "indices"])
ModeResult = namedtuple("mode", ["values", "indices"])
AminmaxResult = namedtuple("aminmax", ["min", "max"])
CummaxResult = namedtuple("cummax", ["values", "indices"])
CumminResult = namedtuple("cummin", ["values", "indices"])


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum treating NaN as zero."""
    if input._dtype.category < FLOAT:
        return sum_(input, dim, keepdim, dtype=dtype)
    return sum_(where(isnan(input), 0.0, input), dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over the non-NaN elements."""
    if input._dtype.category < FLOAT:
        raise RuntimeError(f"nanmean(): expected input to have floating point or complex dtype but got "
                           f"{input._dtype.name.capitalize()}")
    if dtype is not None:
        input = input.to(dtype)
    count = sum_((~isnan(input)).to(input._dtype), dim, keepdim)
    return nansum(input, dim, keepdim) / count


def _index_of(picked, dim: int, keepdim: bool):
    return picked if keepdim else picked.squeeze(dim)


def _order_statistic(input, dim, keepdim: bool, ignore_nan: bool, result):
    if dim is None:
        flat = input.reshape(-1)
        if flat._data.size == 0:
            return wrap(input._device.xp.asarray(float("nan"), dtype=input._dtype.np), input._device)
        return _order_statistic(flat, 0, False, ignore_nan, result).values
    dim = normalize_dim(dim, input._data.ndim)
    x = input if input._data.ndim else input.reshape(1)
    values, indices = sort(x, dim)
    xp = input._device.xp
    n = x._data.shape[dim]
    if ignore_nan:
        count = (~xp.isnan(x._data)).sum(axis=dim, keepdims=True)
        position = xp.maximum((count - 1) // 2, 0)
    else:
        # NOTE: sort puts NaN last, so a slice holding a NaN picks it (median propagates NaN).
        has_nan = xp.isnan(x._data).any(axis=dim, keepdims=True)
        position = xp.where(has_nan, n - 1, (n - 1) // 2)
    position = wrap(position.astype(int64.np), input._device)
    picked = gather(values, dim, position)
    index = gather(indices, dim, position)
    if not input._data.ndim:
        return result(picked.reshape(()), index.reshape(()))
    return result(_index_of(picked, dim, keepdim), _index_of(index, dim, keepdim))


def median(input, dim=None, keepdim=False):
    """The lower median (of all elements, or ``(values, indices)`` along ``dim``); NaN propagates."""
    return _order_statistic(input, dim, keepdim, False, MedianResult)


def nanmedian(input, dim=None, keepdim=False):
    """The lower median of the non-NaN elements."""
    return _order_statistic(input, dim, keepdim, True, NanmedianResult)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool, name: str):
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"{name}() interpolation must be one of {', '.join(_INTERPOLATIONS)}. "
                         f"Got {interpolation!r}")
    if input._dtype.name not in ("float32", "float64"):
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    xp = input._device.xp
    scalar_q = not isinstance(q, Tensor)
    q_data = xp.asarray(q, dtype=input._dtype.np) if scalar_q else q._data.astype(input._dtype.np)
    if q_data.ndim > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if ((q_data < 0) | (q_data > 1)).any():
        raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
    flat = dim is None
    x, dim = (input.reshape(-1), 0) if flat else (input if input._data.ndim else input.reshape(1),
                                                   normalize_dim(dim, input._data.ndim))
    values, _ = sort(x, dim)
    data = x._data
    n = data.shape[dim]
    nan = xp.isnan(data)
    count = (~nan).sum(axis=dim, keepdims=True) if ignore_nan else xp.full(
        tuple(1 if i == dim else s for i, s in enumerate(data.shape)), n)
    outs = []
    for qv in backend.to_numpy(q_data).reshape(-1).tolist():
        rank = qv * (count - 1).clip(0)
        lo = xp.floor(rank).astype(int64.np)
        hi = xp.ceil(rank).astype(int64.np)
        if interpolation == "nearest":
            lo = hi = xp.round(rank).astype(int64.np)  # NOTE: round half to even, as PyTorch
        lower = gather(values, dim, wrap(lo, input._device))
        upper = gather(values, dim, wrap(hi, input._device))
        if interpolation in ("lower", "nearest"):
            out = lower
        elif interpolation == "higher":
            out = upper
        elif interpolation == "midpoint":
            out = (lower + upper) * 0.5
        else:
            out = lower + (upper - lower) * wrap((rank - lo).astype(input._dtype.np), input._device)
        missing = (count == 0) if ignore_nan else nan.any(axis=dim, keepdims=True)
        if missing.any():
            out = where(wrap(missing, input._device), float("nan"), out)
        if flat:
            out = out.reshape((1,) * input._data.ndim if keepdim else ())
        elif not keepdim:
            out = out.squeeze(dim)
        outs.append(out)
    if scalar_q or q_data.ndim == 0:
        return outs[0]
    from engine.ops.shape import stack

    return stack(outs)


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The ``q``-th quantiles along ``dim`` (all elements when None); NaN propagates."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """``quantile`` over the non-NaN elements."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along ``dim`` (the smallest on ties) and the last index holding it."""
    xp = input._device.xp
    x = input if input._data.ndim else input.reshape(1)
    dim = normalize_dim(dim, x._data.ndim)
    moved = xp.moveaxis(x._data, dim, -1)
    n = moved.shape[-1]
    flat = moved.reshape(-1, n)
    ordered = xp.sort(flat, axis=-1)
    # runs of equal values in each sorted row: the longest run (first on ties: the smallest value)
    same = (ordered[:, 1:] == ordered[:, :-1])
    run = xp.ones(flat.shape, dtype=int64.np)
    for j in range(1, n):
        run[:, j] = xp.where(same[:, j - 1], run[:, j - 1] + 1, 1)
    best = xp.argmax(run, axis=-1)
    value = ordered[xp.arange(flat.shape[0]), best]
    hits = flat == value[:, None]
    last = n - 1 - xp.argmax(hits[:, ::-1], axis=-1)
    shape = (*moved.shape[:-1], 1)
    index = xp.moveaxis(last.reshape(shape), -1, dim)
    index_t = wrap(index.astype(int64.np), input._device)
    values = gather(x, dim, index_t)
    if not input._data.ndim:
        return ModeResult(values.reshape(()), index_t.reshape(()))
    return ModeResult(_index_of(values, dim, keepdim), _index_of(index_t, dim, keepdim))


def aminmax(input, *, dim=None, keepdim=False):
    """``(amin, amax)`` in one call."""
    if input._data.size == 0:
        raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation "
                           "has no identity.")
    dims = () if dim is None else dim
    return AminmaxResult(amin(input, dims, keepdim), amax(input, dims, keepdim))


def _running(data, axis: int, combine, xp):
    # NOTE: a Hillis-Steele scan of ``combine`` along ``axis`` (any array module, log2(n) steps).
    out = xp.moveaxis(data, axis, -1).copy()
    shift = 1
    while shift < out.shape[-1]:
        out[..., shift:] = combine(out[..., shift:], out[..., :-shift].copy())
        shift *= 2
    return xp.moveaxis(out, -1, axis)


def _cumulative_extreme(input, dim: int, largest: bool, result):
    xp = input._device.xp
    x = input if input._data.ndim else input.reshape(1)
    dim = normalize_dim(dim, x._data.ndim)
    data = x._data
    better = xp.fmax if largest else xp.fmin
    nan = xp.isnan(data) if data.dtype.kind in "fc" else None
    running = _running(data, dim, better, xp)
    if nan is not None:  # NaN wins from its position on, as in PyTorch
        seen_nan = _running(nan, dim, xp.logical_or, xp)
        running = xp.where(seen_nan, xp.nan, running)
    shape = [1] * data.ndim
    shape[dim] = data.shape[dim]
    positions = xp.arange(data.shape[dim]).reshape(shape)
    reached = (data == running) | (nan if nan is not None else False)
    last = _running(xp.where(reached, positions, -1), dim, xp.maximum, xp).astype(int64.np)
    index = wrap(last, input._device)
    values = gather(x, dim, index)
    if not input._data.ndim:
        return result(values.reshape(()), index.reshape(()))
    return result(values, index)


def cummax(input, dim):
    """Running maximum along ``dim`` and the index where each was reached."""
    return _cumulative_extreme(input, dim, True, CummaxResult)


def cummin(input, dim):
    """Running minimum along ``dim`` and the index where each was reached."""
    return _cumulative_extreme(input, dim, False, CumminResult)


class LogCumSumExp(Function):
    """``log(cumsum(exp(x)))`` along ``dim`` as a running logaddexp (no overflow, no underflow)."""

    @staticmethod
    def forward(ctx, x, dim):
        xp = x._device.xp
        token = fp_ignore()
        try:
            out = _running(x._data, dim, xp.logaddexp, xp)
        finally:
            fp_restore(token)
        result = wrap(out.astype(x._dtype.np, copy=False), x._device)
        ctx.dim = dim
        ctx.save_for_backward(x)
        return result

    @staticmethod
    def backward(ctx, g):
        # NOTE: PyTorch's formula: sum_{i>=j} g_i exp(x_j - out_i), with g's positive and negative parts
        # taken in log space by a reversed logcumsumexp (itself differentiable, so this differentiates again).
        (x,) = ctx.saved_tensors
        dim = ctx.dim
        out = logcumsumexp(x, dim)  # recomputed, so that under create_graph it is a function of x

        def reversed_scan(t):
            return logcumsumexp(t.flip(dim), dim).flip(dim)

        def log_of_positive(t):  # log(t) where t > 0, else -inf (without an infinite derivative)
            keep = t > 0
            return where(keep, log(where(keep, t, 1.0)), float("-inf"))

        positive = exp(reversed_scan(log_of_positive(g) - out) + x)
        negative = exp(reversed_scan(log_of_positive(-g) - out) + x)
        return positive - negative, None


def logcumsumexp(input, dim):
    """``log(cumsum(exp(input), dim))`` without overflow or underflow."""
    x = to_float(input)
    if not x._data.ndim:
        return x.clone()
    return LogCumSumExp.apply(x, normalize_dim(dim, x._data.ndim))


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim``."""
    if input._data.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    dim = normalize_dim(dim, input._data.ndim)
    parts = [p for p in (prepend, input, append) if p is not None]
    x = cat(parts, dim) if len(parts) > 1 else input
    for _ in range(n):
        length = x._data.shape[dim]
        if length == 0:
            break
        after, before = narrow(x, dim, 1, length - 1), narrow(x, dim, 0, length - 1)
        x = (after != before) if x._dtype.name == "bool" else after - before
    return x


def trace(input):
    """The sum of a matrix's main diagonal."""
    if input._data.ndim != 2:
        raise RuntimeError("trace: expected a matrix, but got tensor with dim " + str(input._data.ndim))
    return sum_(diagonal(input))


def dist(input, other, p=2):
    """The ``p``-norm of ``input - other``."""
    from engine.ops.reduction import norm

    return norm(input - other, p)


def cov(input, *, correction=1, fweights=None, aweights=None):
    """The covariance matrix of the variables in the rows of ``input`` (observations in columns)."""
    if input._data.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input._data.ndim} dimensions")
    x = to_float(input)
    x = x.reshape(1, -1) if x._data.ndim < 2 else x
    n = x._data.shape[1]
    weights = None
    if fweights is not None:
        weights = fweights.to(x._dtype)
    if aweights is not None:
        weights = aweights.to(x._dtype) if weights is None else weights * aweights.to(x._dtype)
    if weights is None:
        total = float(n)
        mean = x.mean(1, keepdim=True)
        norm = total - correction
    else:
        total = weights.sum()
        mean = (x * weights).sum(1, keepdim=True) / total
        if correction == 0:
            norm = total
        elif aweights is None:
            norm = total - correction
        else:
            norm = total - correction * (weights * aweights.to(x._dtype)).sum() / total
    centered = x - mean
    scaled = centered if weights is None else centered * weights
    norm = norm.clamp(min=0) if isinstance(norm, Tensor) else builtins.max(norm, 0)
    out = (scaled @ centered.mT.conj()) / norm
    return out.squeeze() if input._data.ndim < 2 else out


def corrcoef(input):
    """Pearson correlation coefficients of the rows of ``input``."""
    c = cov(input)
    if c._data.ndim == 0:
        return c / c
    d = diagonal(c) ** 0.5
    out = c / d.reshape(-1, 1) / d.reshape(1, -1)
    return out.clamp(-1, 1) if out._dtype.category == FLOAT else out


def _trapezoid_spacing(y, x, dx, dim: int):
    if x is not None:
        if x._data.ndim == 1:
            shape = [1] * y._data.ndim
            shape[dim] = x._data.shape[0]
            x = x.reshape(shape)
        return diff(x, dim=dim)
    return 1.0 if dx is None else dx


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoidal rule along ``dim`` with sample points ``x`` or spacing ``dx``."""
    dim = normalize_dim(dim, y._data.ndim)
    length = y._data.shape[dim]
    if length == 0:
        return sum_(to_float(y), dim)
    spacing = _trapezoid_spacing(y, x, dx, dim)
    pairs = narrow(y, dim, 1, length - 1) + narrow(y, dim, 0, length - 1)
    return sum_(pairs * spacing, dim) * 0.5


def trapz(y, x=None, *, dx=None, dim=-1):
    """Alias of ``trapezoid``."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """The running trapezoidal rule along ``dim`` (one fewer element along it)."""
    from engine.ops.reduction import cumsum

    dim = normalize_dim(dim, y._data.ndim)
    length = y._data.shape[dim]
    spacing = _trapezoid_spacing(y, x, dx, dim)
    pairs = narrow(y, dim, 1, builtins.max(length - 1, 0)) + narrow(y, dim, 0, builtins.max(length - 1, 0))
    return cumsum(pairs * spacing * 0.5, dim)



def renorm(input, p, dim: int, maxnorm):
    """Each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` is scaled down to norm ``maxnorm``."""
    from engine.linalg import vector_norm

    if p <= 0:
        raise RuntimeError(f"renorm: non-positive-norm not supported, got p={p}")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    dim = normalize_dim(dim, input._data.ndim)
    others = tuple(d for d in range(input._data.ndim) if d != dim)
    # NOTE: half types take the norm in float32 (vector_norm refuses them), then the factor is cast back
    wide = input.float() if input._dtype.itemsize < 4 else input
    norms = vector_norm(wide, p, dim=others, keepdim=True)
    # NOTE: PyTorch's factor maxnorm / (norm + 1e-7), applied only where the norm exceeds maxnorm
    factor = where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)
    return input * factor.to(input._dtype)


def norm_except_dim(v, pow=2, dim: int = 0):
    """The ``pow``-norm of each slice of ``v`` along ``dim`` (kept as a size-1-elsewhere shape), or of all
    of ``v`` when ``dim`` is -1 (weight normalization's ``g``)."""
    from engine.linalg import vector_norm

    if dim == -1:
        return vector_norm(v, pow)
    dim = normalize_dim(dim, v._data.ndim)
    others = tuple(d for d in range(v._data.ndim) if d != dim)
    return vector_norm(v, pow, dim=others, keepdim=True)


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1) -> tuple:
    """Second-order accurate central differences inside, first- or second-order ones at the edges, along
    each of ``dim`` (all dims by default); ``spacing`` is a number, one per dim, or coordinate tensors."""
    if edge_order not in (1, 2):
        raise RuntimeError(f"torch.gradient only supports edge_order=1 and edge_order=2, got {edge_order}")
    ndim = input._data.ndim
    dims = list(range(ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    dims = [normalize_dim(d, ndim) for d in dims]
    spacings = list(spacing) if isinstance(spacing, list | tuple) else [spacing] * len(dims)
    if len(spacings) == 1 and len(dims) > 1:
        spacings = spacings * len(dims)
    if len(spacings) != len(dims):
        raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar or a list of length "
                           f"{len(dims)}, but got a list of length {len(spacings)}")
    x = to_float(input)
    return tuple(_gradient_along(x, d, s, edge_order) for d, s in zip(dims, spacings, strict=True))


def _gradient_along(x, dim: int, spacing, edge_order: int):
    n = x._data.shape[dim]
    if n < edge_order + 1:
        raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")

    def part(start, length):
        return narrow(x, dim, start, length)

    if isinstance(spacing, Tensor):  # coordinates: NumPy's non-uniform formulas
        shape = [1] * x._data.ndim
        shape[dim] = n
        c = spacing.to(x._dtype).reshape(shape)
        h = diff(c, dim=dim)
        h_lo, h_hi = narrow(h, dim, 0, n - 2), narrow(h, dim, 1, n - 2)
        inner = (part(2, n - 2) * h_lo * h_lo - part(0, n - 2) * h_hi * h_hi
                 + part(1, n - 2) * (h_hi * h_hi - h_lo * h_lo)) / (h_lo * h_hi * (h_lo + h_hi))
        if edge_order == 1:
            first = (part(1, 1) - part(0, 1)) / narrow(h, dim, 0, 1)
            last = (part(n - 1, 1) - part(n - 2, 1)) / narrow(h, dim, n - 2, 1)
        else:
            a1, a2 = narrow(h, dim, 0, 1), narrow(h, dim, 1, 1)
            first = (-(2 * a1 + a2) / (a1 * (a1 + a2)) * part(0, 1) + (a1 + a2) / (a1 * a2) * part(1, 1)
                     - a1 / (a2 * (a1 + a2)) * part(2, 1))
            b1, b2 = narrow(h, dim, n - 3, 1), narrow(h, dim, n - 2, 1)
            last = (b2 / (b1 * (b1 + b2)) * part(n - 3, 1) - (b1 + b2) / (b1 * b2) * part(n - 2, 1)
                    + (2 * b2 + b1) / (b2 * (b1 + b2)) * part(n - 1, 1))
        return cat([first, inner, last], dim)
    step = float(spacing)
    inner = (part(2, n - 2) - part(0, n - 2)) / (2 * step)
    if edge_order == 1:
        first = (part(1, 1) - part(0, 1)) / step
        last = (part(n - 1, 1) - part(n - 2, 1)) / step
    else:
        first = (part(0, 1) * -1.5 + part(1, 1) * 2 - part(2, 1) * 0.5) / step
        last = (part(n - 3, 1) * 0.5 - part(n - 2, 1) * 2 + part(n - 1, 1) * 1.5) / step
    return cat([first, inner, last], dim)
