"""``engine.fft``: discrete Fourier transforms with autograd, as ``torch.fft``.

Example:
    >>> import engine
    >>> engine.fft.rfft(engine.tensor([1.0, 0.0, 0.0, 0.0]))
    tensor([1.+0.j, 1.+0.j, 1.+0.j])
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.dtypes import get_default_dtype
from engine.ops.fft import C2C, C2R, DUAL_NORM, R2C, resize
from engine.tensor import Tensor

__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "hfft2", "hfftn", "ifft", "ifft2", "ifftn",
           "ifftshift", "ihfft", "ihfft2", "ihfftn", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq",
           "rfftn"]


# ----- argument handling ------------------------------------------------------------------------
def _norm(norm: str | None) -> str:
    if norm is None:
        return "backward"
    if norm not in DUAL_NORM:
        raise ValueError(f'Invalid normalization mode: "{norm}"')
    return norm


def _as_complex(x: Tensor) -> Tensor:
    if x._dtype.is_complex:
        return x
    real = x if x._dtype.is_floating_point and x._dtype.itemsize >= 4 else x.to(get_default_dtype())
    return real.to(real._dtype.to_complex())


def _as_real(x: Tensor, name: str) -> Tensor:
    if x._dtype.is_complex:
        raise RuntimeError(f"{name} expects a real input tensor, but got {x._dtype.name}")
    return x if x._dtype.is_floating_point and x._dtype.itemsize >= 4 else x.to(get_default_dtype())


def _wrap_dim(dim: int, ndim: int) -> int:
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                         f"but got {dim})")
    return dim % ndim


def _check_n(n: int) -> None:
    if n < 1:
        raise RuntimeError(f"Invalid number of data points ({n}) specified")


def _dims_and_sizes(x: Tensor, s, dim, default_dims) -> tuple[tuple, list]:
    """PyTorch's rules: ``dim`` defaults to the last len(s) dims (or ``default_dims``); -1 in s keeps a size."""
    ndim = x._data.ndim
    if dim is not None:
        dims = [dim] if isinstance(dim, int) else list(dim)
    elif s is not None:
        dims = list(range(ndim - len(s), ndim))
    else:
        dims = list(range(ndim)) if default_dims is None else list(default_dims)
    dims = [_wrap_dim(d, ndim) for d in dims]
    if len(set(dims)) != len(dims):
        raise RuntimeError("FFT dims must be unique")
    if s is not None:
        s = list(s)
        if len(s) != len(dims):
            raise RuntimeError(f"When given, dim and shape arguments must have the same length, but got "
                               f"{len(dims)} dims and {len(s)} shape values")
        sizes = [x._data.shape[d] if n == -1 else int(n) for d, n in zip(dims, s, strict=True)]
    else:
        sizes = [x._data.shape[d] for d in dims]
    for n in sizes:
        _check_n(n)
    return tuple(dims), sizes


def _resize_all(x: Tensor, dims, sizes) -> Tensor:
    for d, n in zip(dims, sizes, strict=True):
        x = resize(x, d, n)
    return x


def _finish(result: Tensor, out) -> Tensor:
    if out is None:
        return result
    if not isinstance(out, Tensor):
        raise TypeError(f"out must be a Tensor, not {type(out).__name__}")
    if tuple(out.shape) != tuple(result.shape) or out.dtype is not result.dtype:
        raise RuntimeError(f"out= expects a tensor of shape {list(result.shape)} and dtype {result.dtype}, got "
                           f"{list(out.shape)} and {out.dtype}")
    return out.copy_(result.detach())


# ----- complex-to-complex -----------------------------------------------------------------------
def _c2c(input, s, dim, norm, forward: bool, default_dims=None):
    norm = _norm(norm)
    x = _as_complex(input)
    dims, sizes = _dims_and_sizes(x, s, dim, default_dims)
    return C2C.apply(_resize_all(x, dims, sizes), dims, norm, forward)


def fft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The one-dimensional discrete Fourier transform of ``input`` along ``dim``."""
    return _finish(_c2c(input, None if n is None else [n], dim, norm, True), out)


def ifft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The one-dimensional inverse discrete Fourier transform along ``dim``."""
    return _finish(_c2c(input, None if n is None else [n], dim, norm, False), out)


def fft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1), norm: str | None = None,
         *, out=None) -> Tensor:
    """The two-dimensional discrete Fourier transform (over the last two dims by default)."""
    return _finish(_c2c(input, s, dim, norm, True), out)


def ifft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1), norm: str | None = None,
          *, out=None) -> Tensor:
    """The two-dimensional inverse discrete Fourier transform."""
    return _finish(_c2c(input, s, dim, norm, False), out)


def fftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
         norm: str | None = None, *, out=None) -> Tensor:
    """The N-dimensional discrete Fourier transform (over every dim by default)."""
    return _finish(_c2c(input, s, dim, norm, True), out)


def ifftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
          norm: str | None = None, *, out=None) -> Tensor:
    """The N-dimensional inverse discrete Fourier transform."""
    return _finish(_c2c(input, s, dim, norm, False), out)


# ----- real-to-complex (one-sided) --------------------------------------------------------------
def _r2c(input, s, dim, norm, name: str):
    norm = _norm(norm)
    x = _as_real(input, name)
    dims, sizes = _dims_and_sizes(x, s, dim, None)
    return R2C.apply(_resize_all(x, dims, sizes), dims, norm)


def rfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The FFT of a real signal: the n // 2 + 1 non-negative frequencies."""
    return _finish(_r2c(input, None if n is None else [n], dim, norm, "rfft"), out)


def rfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1), norm: str | None = None,
          *, out=None) -> Tensor:
    """The two-dimensional FFT of a real signal (one-sided in the last dim)."""
    return _finish(_r2c(input, s, dim, norm, "rfftn"), out)


def rfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
          norm: str | None = None, *, out=None) -> Tensor:
    """The N-dimensional FFT of a real signal (one-sided in the last transformed dim)."""
    return _finish(_r2c(input, s, dim, norm, "rfftn"), out)


# ----- complex-to-real (one-sided input) --------------------------------------------------------
def _c2r(input, s, dim, norm):
    norm = _norm(norm)
    x = _as_complex(input)
    dims, sizes = _dims_and_sizes(x, s, dim, None)
    if s is None or s[-1] == -1:  # the last output length defaults to 2 * (m - 1)
        sizes[-1] = 2 * (x._data.shape[dims[-1]] - 1)
        _check_n(sizes[-1])
    x = _resize_all(x, dims[:-1], sizes[:-1])
    x = resize(x, dims[-1], sizes[-1] // 2 + 1)
    return C2R.apply(x, dims, norm, sizes)


def irfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The inverse of ``rfft``: a real signal of length ``n`` (default 2 * (m - 1))."""
    return _finish(_c2r(input, None if n is None else [n], dim, norm), out)


def irfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1), norm: str | None = None,
           *, out=None) -> Tensor:
    """The inverse of ``rfft2``."""
    return _finish(_c2r(input, s, dim, norm), out)


def irfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
           norm: str | None = None, *, out=None) -> Tensor:
    """The inverse of ``rfftn``."""
    return _finish(_c2r(input, s, dim, norm), out)


# ----- Hermitian: hfft = irfft of the conjugate, ihfft = conjugate of rfft, norms swapped -------
def hfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The FFT of a Hermitian-symmetric signal given by its one-sided half: a real spectrum."""
    return _finish(_c2r(_as_complex(input).conj(), None if n is None else [n], dim, DUAL_NORM[_norm(norm)]), out)


def ihfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None, *, out=None) -> Tensor:
    """The inverse of ``hfft``: the one-sided half of a real signal's inverse FFT."""
    return _finish(_r2c(input, None if n is None else [n], dim, DUAL_NORM[_norm(norm)], "ihfft").conj(), out)


def hfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1), norm: str | None = None,
          *, out=None) -> Tensor:
    """The two-dimensional ``hfft``."""
    return _finish(_c2r(_as_complex(input).conj(), s, dim, DUAL_NORM[_norm(norm)]), out)


def hfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
          norm: str | None = None, *, out=None) -> Tensor:
    """The N-dimensional ``hfft``."""
    return _finish(_c2r(_as_complex(input).conj(), s, dim, DUAL_NORM[_norm(norm)]), out)


def ihfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1), norm: str | None = None,
           *, out=None) -> Tensor:
    """The two-dimensional ``ihfft``."""
    return _finish(_r2c(input, s, dim, DUAL_NORM[_norm(norm)], "ihfftn").conj(), out)


def ihfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
           norm: str | None = None, *, out=None) -> Tensor:
    """The N-dimensional ``ihfft``."""
    return _finish(_r2c(input, s, dim, DUAL_NORM[_norm(norm)], "ihfftn").conj(), out)


# ----- frequencies and shifts -------------------------------------------------------------------
def fftfreq(n: int, d: float = 1.0, *, out=None, dtype=None, layout=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Sample frequencies of an ``n``-point FFT with sample spacing ``d``: [0, 1, ..., -1] / (d * n)."""
    from engine.creation import arange

    if n < 1:
        raise RuntimeError(f"fftfreq expects a positive number of points, got {n}")
    index = arange(n, dtype=dtype, device=device)
    index = index if index._dtype.differentiable else index.to(get_default_dtype())
    index = (index - n * (index >= (n + 1) // 2).to(index._dtype)) / (d * n)
    return _finish(index.requires_grad_(requires_grad), out)


def rfftfreq(n: int, d: float = 1.0, *, out=None, dtype=None, layout=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """Sample frequencies of an ``n``-point ``rfft``: [0, 1, ..., n // 2] / (d * n)."""
    from engine.creation import arange

    if n < 1:
        raise RuntimeError(f"rfftfreq expects a positive number of points, got {n}")
    index = arange(n // 2 + 1, dtype=dtype, device=device)
    index = index if index._dtype.differentiable else index.to(get_default_dtype())
    return _finish((index / (d * n)).requires_grad_(requires_grad), out)


def _shift_dims(input: Tensor, dim) -> tuple:
    if dim is None:
        return tuple(range(input._data.ndim))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def fftshift(input: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """Move the zero-frequency term to the centre of the given dims (every dim by default)."""
    dims = _shift_dims(input, dim)
    return input.roll([input._data.shape[d] // 2 for d in dims], dims)


def ifftshift(input: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """The inverse of ``fftshift``."""
    dims = _shift_dims(input, dim)
    return input.roll([-(input._data.shape[d] // 2) for d in dims], dims)
