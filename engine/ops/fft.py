"""The three FFT primitives behind ``engine.fft``, each with its adjoint as backward.

``C2C`` (complex -> complex), ``R2C`` (real -> one-sided complex) and ``C2R`` (one-sided complex ->
real) run ``numpy.fft``/``cupy.fft`` over the given dims on inputs already resized to the transform
length. The adjoint of a transform with norm ``m`` is the opposite transform with the dual norm
(backward <-> forward, ortho <-> ortho), which is what PyTorch's FFT backward formulas compute.
"""

from __future__ import annotations

from engine.autograd.function import Function
from engine.tensor import Tensor, _make

DUAL_NORM = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _complex_grad(g: Tensor, like_dtype) -> Tensor:
    return g if g._dtype.is_complex else g.to(like_dtype)


class C2C(Function):
    @staticmethod
    def forward(ctx, x, dims, norm, forward):
        ctx.args = (dims, norm, forward, x._dtype)
        fft = x._device.xp.fft
        data = (fft.fftn if forward else fft.ifftn)(x._data, axes=dims, norm=norm)
        return _make(data.astype(x._dtype.np, copy=False), x._dtype, x._device)

    @staticmethod
    def backward(ctx, g):
        dims, norm, forward, dtype = ctx.args
        return C2C.apply(_complex_grad(g, dtype), dims, DUAL_NORM[norm], not forward), None, None, None


class R2C(Function):
    """A one-sided forward transform of a real tensor: the last of ``dims`` keeps n // 2 + 1 entries."""

    @staticmethod
    def forward(ctx, x, dims, norm):
        ctx.args = (dims, norm, x._data.shape[dims[-1]])
        out_dtype = x._dtype.to_complex()
        data = x._device.xp.fft.rfftn(x._data, axes=dims, norm=norm)
        return _make(data.astype(out_dtype.np, copy=False), out_dtype, x._device)

    @staticmethod
    def backward(ctx, g):
        dims, norm, n = ctx.args
        full = resize(g, dims[-1], n)  # the dropped half of the spectrum gets no gradient
        return C2C.apply(full, dims, DUAL_NORM[norm], False).real, None, None


class C2R(Function):
    """The inverse of ``R2C``: ``sizes`` are the real output's lengths along ``dims``."""

    @staticmethod
    def forward(ctx, x, dims, norm, sizes):
        ctx.args = (dims, norm, sizes[-1])
        out_dtype = x._dtype.to_real()
        data = x._device.xp.fft.irfftn(x._data, s=sizes, axes=dims, norm=norm)
        return _make(data.astype(out_dtype.np, copy=False), out_dtype, x._device)

    @staticmethod
    def backward(ctx, g):
        dims, norm, n = ctx.args
        grad = R2C.apply(g.contiguous(), dims, DUAL_NORM[norm])
        # NOTE: each one-sided entry but DC (and Nyquist for even n) stands for itself and its mirror.
        kept = n // 2 + 1
        doubled = n - kept
        if doubled > 0:
            from engine.creation import ones

            scale = ones(kept, dtype=g._dtype, device=g._device)
            scale[1:1 + doubled] = 2.0
            dim = dims[-1] % g._data.ndim
            grad = grad * scale.reshape((kept,) + (1,) * (g._data.ndim - 1 - dim))
        return grad, None, None, None


def resize(x: Tensor, dim: int, n: int) -> Tensor:
    """``x`` truncated or zero-padded to length ``n`` along ``dim`` (an FFT's ``n`` argument)."""
    size = x._data.shape[dim]
    if size == n:
        return x
    if size > n:
        return x.narrow(dim, 0, n)
    from engine.creation import zeros
    from engine.ops.shape import cat

    shape = list(x._data.shape)
    shape[dim] = n - size
    return cat([x, zeros(shape, dtype=x._dtype, device=x._device)], dim)
