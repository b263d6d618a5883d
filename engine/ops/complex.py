"""Complex-number ops: real/imag views, view_as_real/view_as_complex, complex, polar, conj, angle.

Gradients follow PyTorch's convention: for a real loss L and z = x + iy the gradient is
dL/dx + i dL/dy (the conjugate Wirtinger derivative times 2), so holomorphic backward formulas
multiply by the *conjugate* of the derivative.
"""

from __future__ import annotations

import math

from engine.autograd.function import Op
from engine.dtypes import COMPLEX, float32, float64
from engine.ops import grad_math as gm
from engine.ops.promotion import check_same_device
from engine.tensor import Tensor


def _require_complex(x: Tensor, name: str) -> None:
    if not x._dtype.is_complex:
        raise RuntimeError(f"{name} is not implemented for tensors with non-complex dtypes.")


class Real(Op):
    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        return x._data.real

    @staticmethod
    def backward(ctx, g):
        return g * (1 + 0j)


class Imag(Op):
    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        return x._data.imag

    @staticmethod
    def backward(ctx, g):
        return g * 1j


def real(input: Tensor) -> Tensor:
    """The real part: a view of a complex tensor; a real tensor is returned as is (``torch.real``)."""
    return Real.apply(input) if input._dtype.is_complex else input


def imag(input: Tensor) -> Tensor:
    """The imaginary part of a complex tensor, as a view (``torch.imag``)."""
    _require_complex(input, "imag")
    return Imag.apply(input)


class ViewAsReal(Op):
    _view = True

    @staticmethod
    def forward(ctx, x):
        data = x._data
        try:  # a view: the complex numbers' memory read as (real, imag) pairs
            return data[..., None].view(x._dtype.to_real().np)
        except ValueError:  # an array module that can't reinterpret this layout: a copy
            return x._device.xp.stack([data.real, data.imag], axis=-1)

    @staticmethod
    def backward(ctx, g):
        return ViewAsComplex.apply(g)  # NOTE: a gradient of any layout (a copy when it can't be viewed)


class ViewAsComplex(Op):
    _view = True

    @staticmethod
    def forward(ctx, x):
        data = x._data
        try:
            return data.view(x._dtype.to_complex().np)[..., 0]
        except ValueError:
            return (data[..., 0] + 1j * data[..., 1]).astype(x._dtype.to_complex().np)

    @staticmethod
    def backward(ctx, g):
        return view_as_real(g)


def view_as_real(input: Tensor) -> Tensor:
    """A real view of a complex tensor with a trailing dimension of size 2 (``torch.view_as_real``)."""
    if not input._dtype.is_complex:
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return ViewAsReal.apply(input)


def view_as_complex(input: Tensor) -> Tensor:
    """A complex view of a real tensor whose last dimension (size 2, stride 1) holds (real, imag)."""
    if input._dtype not in (float32, float64):
        raise RuntimeError("view_as_complex is only supported for float and double tensors, but got a tensor "
                           f"of scalar type: {input._dtype.name}")
    if input._data.ndim == 0 or input._data.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    if input._data.ndim and input._data.strides[-1] != input._dtype.itemsize:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(s % (2 * input._dtype.itemsize) for s in input._data.strides[:-1]):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    return ViewAsComplex.apply(input)


def _check_real_pair(a: Tensor, b: Tensor) -> None:
    check_same_device(a, b)
    if a._dtype is not b._dtype:
        raise RuntimeError(f"Expected object of scalar type {a._dtype.name} but got scalar type {b._dtype.name} "
                           f"for second argument")
    if a._dtype not in (float32, float64):
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                           f"{a._dtype.name} and {b._dtype.name}")


class Complex(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, re, im):
        ctx.shapes = (re._data.shape, im._data.shape)
        data = re._data.astype(re._dtype.to_complex().np)
        return data + (1j * im._data).astype(data.dtype)

    @staticmethod
    def backward(ctx, g):
        need_re, need_im = ctx.needs_input_grad
        shape_re, shape_im = ctx.shapes
        return (gm.sum_to(g.real, shape_re) if need_re else None,
                gm.sum_to(g.imag, shape_im) if need_im else None)


def complex(real: Tensor, imag: Tensor, *, out=None) -> Tensor:
    """``real + i * imag`` from two float tensors of one dtype (``torch.complex``)."""
    _check_real_pair(real, imag)
    return Complex.apply(real, imag)


class Polar(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, r, theta):
        ctx.shapes = (r._data.shape, theta._data.shape)
        xp = r._device.xp
        unit = xp.cos(theta._data) + 1j * xp.sin(theta._data)
        out = (r._data * unit).astype(r._dtype.to_complex().np)
        ctx.save_for_backward(r, theta)
        return out

    @staticmethod
    def backward(ctx, g):
        r, theta = ctx.saved_tensors
        need_r, need_theta = ctx.needs_input_grad
        shape_r, shape_theta = ctx.shapes
        cos, sin = gm.cos(theta), gm.sin(theta)
        # NOTE: dL/dr = Re(g * conj(e^{i theta})), dL/dtheta = Re(g * conj(i z)) = r * (g.imag cos - g.real sin)
        grad_r = gm.sum_to(g.real * cos + g.imag * sin, shape_r) if need_r else None
        grad_theta = gm.sum_to(r * (g.imag * cos - g.real * sin), shape_theta) if need_theta else None
        return grad_r, grad_theta


def polar(abs: Tensor, angle: Tensor, *, out=None) -> Tensor:
    """``abs * (cos(angle) + i sin(angle))`` (``torch.polar``)."""
    _check_real_pair(abs, angle)
    return Polar.apply(abs, angle)


class ConjPhysical(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        return x._data.conj()

    @staticmethod
    def backward(ctx, g):
        return gm.conj(g)


def conj_physical(input: Tensor) -> Tensor:
    """The complex conjugate, computed into new memory; real tensors are returned as is."""
    return ConjPhysical.apply(input) if input._dtype.is_complex else input


def conj(input: Tensor) -> Tensor:
    """The complex conjugate (``torch.conj``).

    PyTorch returns a lazy view with the conjugate bit set; the engine conjugates eagerly, so
    ``is_conj()`` is always False and ``resolve_conj`` has nothing to resolve.
    """
    return conj_physical(input)


def resolve_conj(input: Tensor) -> Tensor:
    """Materialise a lazy conjugate; engine conjugates are never lazy, so ``input`` itself."""
    return input


def resolve_neg(input: Tensor) -> Tensor:
    """Materialise a lazy negation; engine negations are never lazy, so ``input`` itself."""
    return input


def is_conj(input: Tensor) -> bool:
    return False


def is_neg(input: Tensor) -> bool:
    return False


class Angle(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        data = x._data
        if x._dtype.is_complex:
            return x._device.xp.angle(data).astype(x._dtype.to_real().np)
        # NOTE: a real number's angle is pi for negatives and 0 otherwise (nan stays nan), as in PyTorch.
        xp = x._device.xp
        return xp.where(data < 0, data.dtype.type(math.pi), xp.where(xp.isnan(data), data, data.dtype.type(0)))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if gm.dtype_kind(x) != "c":
            return g * 0
        # NOTE: d angle = Im(dz / z): the gradient is g * i z / |z|^2 (0 at z == 0).
        sq = (x * gm.conj(x)).real
        return gm.where(sq == 0, 0j, g * 1j * x / gm.where(sq == 0, 1.0, sq))


def angle(input: Tensor, *, out=None) -> Tensor:
    """The argument of each element, in radians (``torch.angle``); int inputs give float."""
    from engine.ops.promotion import to_float

    return Angle.apply(to_float(input))


def sgn(input: Tensor, *, out=None) -> Tensor:
    """``input / |input|`` (0 where input is 0) for complex tensors, ``sign`` for real ones (``torch.sgn``)."""
    from engine.ops.arithmetic import where
    from engine.ops.unary import abs as abs_
    from engine.ops.unary import sign

    if not input._dtype.is_complex:
        return sign(input)
    magnitude = abs_(input)
    return input / where(magnitude == 0, 1.0, magnitude)


def no_complex(x, name: str) -> None:
    """Raise for ops that need an ordering (max, sort, clamp, relu ...): complex numbers have none."""
    if isinstance(x, Tensor) and x._dtype.category == COMPLEX:
        raise RuntimeError(f"{name} is not supported for complex tensors: complex numbers are not ordered")


__all__ = [
    "angle",
    "complex",
    "conj",
    "conj_physical",
    "imag",
    "is_conj",
    "is_neg",
    "no_complex",
    "polar",
    "real",
    "resolve_conj",
    "resolve_neg",
    "view_as_complex",
    "view_as_real",
]


def _adjoint(x: Tensor) -> Tensor:
    return conj(x.T)


def _matrix_adjoint(x: Tensor) -> Tensor:
    return conj(x.mT)


def install_methods() -> None:
    """Attach ``x.real``/``x.imag`` (views), ``x.conj()``, ``x.angle()`` ... and conjugating ``x.H``/``x.mH``."""
    Tensor.real = property(real)
    Tensor.imag = property(imag)
    Tensor.H = property(_adjoint)
    Tensor.mH = property(_matrix_adjoint)
    Tensor.adjoint = _matrix_adjoint
    for fn in (angle, conj, conj_physical, resolve_conj, resolve_neg, is_conj, is_neg, sgn):
        setattr(Tensor, fn.__name__, fn)
